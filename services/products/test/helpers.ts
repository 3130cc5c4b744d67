import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

export const API_KEY = 'test-key';
export const JSONAPI = 'application/vnd.api+json';
export const headers = { 'x-api-key': API_KEY, 'content-type': JSONAPI };

export type ProductsApp = Awaited<ReturnType<typeof buildApp>>;

/** One Products app on its own fresh database for the calling test file. */
export function useProductsApp(): { app: () => ProductsApp; db: () => TestDatabase } {
  let app: ProductsApp;
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('products');
    const config = loadConfig({
      DATABASE_URL: db.url,
      API_KEYS: `${API_KEY},second-key`,
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
