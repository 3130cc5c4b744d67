import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

export const API_KEY = 'test-key';
export const SECOND_KEY = 'second-key';
export const JSONAPI = 'application/vnd.api+json';
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

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'HEAD' | 'PUT';

/**
 * Sends one request with the test key. A string body goes as it is, anything else as JSON; the
 * JSON:API Content-Type is added only when there is a body. `headers` replaces the defaults, and a
 * header set to undefined is not sent at all.
 */
export function send(
  app: ProductsApp,
  method: Method,
  url: string,
  options: { body?: unknown; headers?: Record<string, string | string[] | undefined> } = {},
): Promise<Response> {
  const defaults: Record<string, string> =
    options.body === undefined ? { 'x-api-key': API_KEY } : { ...headers };
  const merged = { ...defaults, ...options.headers };
  const sent = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as Record<
    string,
    string | string[]
  >;
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  return app.inject({ method, url, headers: sent, ...(payload === undefined ? {} : { payload }) });
}

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

/** The standard reason phrases; written out rather than read from node:http, which the code uses. */
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export type Source = { pointer: string } | { parameter: string } | { header: string };

export interface ErrorObject {
  status: string;
  title: string;
  detail: string;
  code?: string;
  source?: Source;
}

/**
 * Asserts a JSON:API error document with the given status: the media type, `errors` as the only
 * top-level member, every error object's `status`, `title` and `detail`, and, when given, exactly
 * the expected `source` members (one error object per problem).
 */
export function expectError(res: Response, status: number, sources?: Source | Source[]): ErrorObject[] {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toBe(JSONAPI);
  const body = res.json() as { errors: ErrorObject[] };
  expect(Object.keys(body)).toEqual(['errors']);
  expect(body.errors.length).toBeGreaterThan(0);
  for (const error of body.errors) {
    expect(error.status).toBe(String(status));
    expect(error.title).toBe(TITLES[status]);
    expect(typeof error.detail).toBe('string');
    expect(error.detail.trim().length).toBeGreaterThan(0);
  }
  if (sources !== undefined) {
    const expected = Array.isArray(sources) ? sources : [sources];
    const actual = body.errors.map((e) => e.source);
    expect(actual).toHaveLength(expected.length);
    expect(actual).toEqual(expect.arrayContaining(expected));
  }
  return body.errors;
}

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
