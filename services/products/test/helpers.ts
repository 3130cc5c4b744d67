import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { send, TEST_API_KEY } from '../../../test/support/inject.js';
import {
  answerOf,
  type ErrorObject,
  expectErrorDocument,
  JSONAPI,
  type Source,
} from '../../../test/support/jsonapi.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

export { type ErrorObject, JSONAPI, type Source };

export const API_KEY = TEST_API_KEY;
export const SECOND_KEY = 'second-key';
export const headers = { 'x-api-key': API_KEY, 'content-type': JSONAPI };

export type ProductsApp = Awaited<ReturnType<typeof buildApp>>;
export type Response = Awaited<ReturnType<ProductsApp['inject']>>;

/** One Products app on its own fresh database for the calling test file. */
export function useProductsApp(): { app: () => ProductsApp; db: () => TestDatabase } {
  let app: ProductsApp;
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('products');
    const config = loadConfig({
      DATABASE_URL: db.url,
      API_KEYS: `${API_KEY},${SECOND_KEY}`,
      LOG_LEVEL: 'silent',
      // Every scrape renders afresh: tests read counters right after changing them.
      METRICS_CACHE_MS: '0',
    });
    app = await buildApp(config, pino({ level: 'silent' }));
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });
  return { app: () => app, db: () => db };
}

export const productBody = (attributes: Record<string, unknown>) => ({
  data: { type: 'products', attributes },
});

export const updateBody = (id: string, attributes: Record<string, unknown>) => ({
  data: { type: 'products', id, attributes },
});

export { send };

export interface ProductResource {
  type: 'products';
  id: string;
  attributes: {
    nombre: string;
    precio: number;
    descripcion: string | null;
    created_at: string;
    updated_at: string;
  };
  links: { self: string };
}

/** Creates a product through the API and returns the resource the service answered with. */
export async function createProduct(
  app: ProductsApp,
  attributes: Record<string, unknown> = {},
): Promise<ProductResource> {
  const res = await send(app, 'POST', '/api/products', {
    body: productBody({ nombre: 'Producto', precio: 10, ...attributes }),
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as ProductResource;
}

/** Asserts a JSON:API error document with the given status (see test/support/jsonapi.ts). */
export const expectError = (res: Response, status: number, sources?: Source | Source[]): ErrorObject[] =>
  expectErrorDocument(answerOf(res), status, sources);

/** Every row of `productos` as exact text, for before/after comparisons. */
export async function tableState(db: TestDatabase): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query(
    `SELECT id, nombre, precio::text AS precio, descripcion, created_at::text AS created_at,
            updated_at::text AS updated_at
       FROM productos ORDER BY id`,
  );
  return rows;
}

/** Runs `action` and asserts that it left `productos` exactly as it found it. */
export async function expectNoWrite<T>(db: TestDatabase, action: () => Promise<T>): Promise<T> {
  const before = await tableState(db);
  const result = await action();
  expect(await tableState(db)).toEqual(before);
  return result;
}

/** The `http_requests_total` series of the app that counted a 5xx answer. */
export async function serverErrorSeries(app: ProductsApp): Promise<string[]> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  return res.body.split('\n').filter((line) => /^http_requests_total\{[^}]*status="5\d\d"/.test(line));
}

/** Registers, where it is called (the end of a file), a test that no request of the file got a 5xx. */
export function itAnsweredNoServerError(ctx: { app: () => ProductsApp }): void {
  it('answered no request of this file with a 5xx', async () => {
    const series = await serverErrorSeries(ctx.app());
    expect(series).toEqual([]);
  });
}

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
