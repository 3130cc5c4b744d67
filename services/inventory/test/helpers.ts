import type { App } from '@catalogo/kit/app';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { buildApp as buildProducts } from '../../products/src/app.js';
import { loadConfig as loadProductsConfig } from '../../products/src/config.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

export const API_KEY = 'test-key';
export const JSONAPI = 'application/vnd.api+json';
export const headers = { 'x-api-key': API_KEY, 'content-type': JSONAPI };
const silent = pino({ level: 'silent' });

/** A real Products service over HTTP on an ephemeral port, with its own database. */
export async function startProducts(): Promise<{
  app: App;
  url: string;
  db: TestDatabase;
  close: () => Promise<void>;
}> {
  const db = await createTestDatabase('products');
  const app = await buildProducts(loadProductsConfig({ DATABASE_URL: db.url, API_KEYS: API_KEY }), silent);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    url: address,
    db,
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
}

export async function buildInventory(
  databaseUrl: string,
  productsUrl: string,
  env: Record<string, string> = {},
) {
  return buildApp(
    loadConfig({
      DATABASE_URL: databaseUrl,
      API_KEYS: `${API_KEY},second-key`,
      PRODUCTS_URL: productsUrl,
      PRODUCTS_API_KEY: API_KEY,
      ...env,
    }),
    silent,
  );
}

export interface InventoryHarness {
  app: () => App;
  db: () => TestDatabase;
  products: () => Awaited<ReturnType<typeof startProducts>>;
  /** Creates a product through the real Products service and returns its id. */
  createProduct: (precio: number, nombre?: string) => Promise<number>;
  setStock: (id: number, cantidad: number) => Promise<void>;
}

/** A Products service over HTTP and an Inventory app on fresh databases, for one test file. */
export function useInventoryApp(env: Record<string, string> = {}): InventoryHarness {
  let app: App;
  let db: TestDatabase;
  let products: Awaited<ReturnType<typeof startProducts>>;
  beforeAll(async () => {
    products = await startProducts();
    db = await createTestDatabase('inventory');
    app = await buildInventory(db.url, products.url, env);
  });
  afterAll(async () => {
    await app?.close();
    await products?.close();
    await db?.drop();
  });
  return {
    app: () => app,
    db: () => db,
    products: () => products,
    createProduct: async (precio, nombre = 'Producto de prueba') => {
      const response = await products.app.inject({
        method: 'POST',
        url: '/api/products',
        headers,
        payload: { data: { type: 'products', attributes: { nombre, precio } } },
      });
      if (response.statusCode !== 201) throw new Error(`product not created: ${response.body}`);
      return Number(response.json().data.id);
    },
    setStock: async (id, cantidad) => {
      const response = await app.inject({
        method: 'PATCH',
        url: `/api/inventory/${id}`,
        headers,
        payload: { data: { type: 'inventories', id: String(id), attributes: { cantidad } } },
      });
      if (response.statusCode !== 200) throw new Error(`stock not set: ${response.body}`);
    },
  };
}

export const purchaseBody = (producto_id: number, cantidad: number) => ({
  data: { type: 'purchases', attributes: { producto_id, cantidad } },
});
