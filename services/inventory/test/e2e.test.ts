/**
 * End to end over real HTTP: both services listen on ephemeral ports and every request, including
 * the Inventory's own calls to Products, goes through a socket. No `inject` here: this is what a
 * client sees, headers and all.
 */
import type { App } from '@catalogo/kit/app';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { API_KEY, buildInventory, expectError, ISO_UTC, JSONAPI, startProducts } from './helpers.js';

let products: Awaited<ReturnType<typeof startProducts>>;
let db: TestDatabase;
let inventory: App;
let inventoryUrl: string;

beforeAll(async () => {
  products = await startProducts();
  db = await createTestDatabase('inventory');
  inventory = await buildInventory(db.url, products.url);
  inventoryUrl = await inventory.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await inventory?.close();
  await products?.close();
  await db?.drop();
});

async function call(base: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      'x-api-key': API_KEY,
      accept: JSONAPI,
      ...(body === undefined ? {} : { 'content-type': JSONAPI }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: () => JSON.parse(text),
    answer: () => ({
      status: res.status,
      contentType: res.headers.get('content-type') ?? undefined,
      body: text,
    }),
  };
}

it('create a product, set its stock, buy, read the history and the stock', async () => {
  const created = await call(products.url, 'POST', '/api/products', {
    data: { type: 'products', attributes: { nombre: 'Cuaderno A5', precio: 3.35 } },
  });
  expect(created.status).toBe(201);
  const product = created.json().data;
  const id = Number(product.id);

  const set = await call(inventoryUrl, 'PATCH', `/api/inventory/${id}`, {
    data: { type: 'inventories', id: String(id), attributes: { cantidad: 10 } },
  });
  expect(set.status, set.text).toBe(200);
  expect(set.headers.get('content-type')).toBe(JSONAPI);
  expect(set.json().included).toEqual([product]);

  const bought = await call(inventoryUrl, 'POST', '/api/purchases', {
    data: { type: 'purchases', attributes: { producto_id: id, cantidad: 3 } },
  });
  expect(bought.status, bought.text).toBe(201);
  expect(bought.headers.get('content-type')).toBe(JSONAPI);
  const location = bought.headers.get('location')!;
  expect(location).toBe(`/api/purchases/${bought.json().data.id}`);
  expect(bought.json().data.attributes).toEqual({
    producto_id: id,
    cantidad: 3,
    precio_unitario: 3.35,
    total: 10.05,
    created_at: expect.stringMatching(ISO_UTC),
    estado: 'completada',
    cancelada_at: null,
  });
  expect(bought.json().included).toEqual([product]);

  const again = await call(inventoryUrl, 'GET', location);
  expect(again.status).toBe(200);
  expect(again.json().data).toEqual(bought.json().data);

  const history = await call(inventoryUrl, 'GET', `/api/purchases?filter[producto_id]=${id}`);
  expect(history.status).toBe(200);
  expect(history.json().data).toEqual([bought.json().data]);

  const stock = await call(inventoryUrl, 'GET', `/api/inventory/${id}`);
  expect(stock.status).toBe(200);
  expect(stock.json().data.attributes.cantidad).toBe(7);
  expect(stock.json().included).toEqual([product]);

  const tooMany = await call(inventoryUrl, 'POST', '/api/purchases', {
    data: { type: 'purchases', attributes: { producto_id: id, cantidad: 8 } },
  });
  expect(expectError(tooMany.answer(), 409)[0]!.meta).toEqual({ disponible: 7 });

  const listed = await call(inventoryUrl, 'GET', '/api/inventory');
  expect(listed.json().data).toContainEqual(expect.objectContaining({ id: String(id) }));
});

it('a product deleted from Products is no longer sold', async () => {
  const created = await call(products.url, 'POST', '/api/products', {
    data: { type: 'products', attributes: { nombre: 'Efímero', precio: 1 } },
  });
  const id = created.json().data.id;
  await call(inventoryUrl, 'PATCH', `/api/inventory/${id}`, {
    data: { type: 'inventories', id, attributes: { cantidad: 5 } },
  });
  expect((await call(products.url, 'DELETE', `/api/products/${id}`)).status).toBe(204);
  const res = await call(inventoryUrl, 'POST', '/api/purchases', {
    data: { type: 'purchases', attributes: { producto_id: Number(id), cantidad: 1 } },
  });
  expect(expectError(res.answer(), 404)[0]!.detail).toBe('Producto no encontrado');
});

it('answers errors in JSON:API over the wire too, and serves /health, /metrics and /docs without a key', async () => {
  const res = await fetch(`${inventoryUrl}/api/purchases`, {
    method: 'POST',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    body: '{}',
  });
  const body = await res.text();
  expectError({ status: res.status, contentType: res.headers.get('content-type') ?? undefined, body }, 415);
  const health = await fetch(`${inventoryUrl}/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: 'ok', checks: { database: 'ok', products: 'ok' } });
  const metrics = await (await fetch(`${inventoryUrl}/metrics`)).text();
  expect(metrics).toContain('products_circuit_breaker_state');
  expect(metrics).toContain('purchases_total');
  expect((await fetch(`${inventoryUrl}/docs/json`)).status).toBe(200);
});
