/**
 * DATABASE_READ_URL: the collections that tolerate a standby's lag (purchase and order history, the
 * stock list, a product's ledger) read there; everything else — single resources and their ETags,
 * idempotent replays, reservations, every write — reads the primary. Here the "standby" is a second,
 * empty database, so where a route read is plain from what it answers.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import {
  buildInventory,
  createProductIn,
  orderBody,
  purchaseBody,
  reservationBody,
  send,
  setStockIn,
  startProducts,
} from './helpers.js';

let products: Awaited<ReturnType<typeof startProducts>>;
let primary: TestDatabase;
let standby: TestDatabase;
let app: Awaited<ReturnType<typeof buildInventory>>;
let id: number;
let purchaseId: string;

beforeAll(async () => {
  products = await startProducts();
  primary = await createTestDatabase('inventory');
  standby = await createTestDatabase('inventory');
  app = await buildInventory(primary.url, products.url, { DATABASE_READ_URL: standby.url });
  id = await createProductIn(products.app, 4);
  await setStockIn(app, id, 10);
  const bought = await send(app, 'POST', '/api/purchases', {
    body: purchaseBody(id, 2),
    headers: { 'idempotency-key': 'read-pool' },
  });
  expect(bought.statusCode, bought.body).toBe(201);
  purchaseId = bought.json().data.id;
  expect(
    (await send(app, 'POST', '/api/orders', { body: orderBody([{ producto_id: id, cantidad: 1 }]) }))
      .statusCode,
  ).toBe(201);
  expect(
    (
      await send(app, 'POST', '/api/reservations', {
        body: reservationBody([{ producto_id: id, cantidad: 1 }]),
      })
    ).statusCode,
  ).toBe(201);
});

afterAll(async () => {
  await app?.close();
  await products?.close();
  await primary?.drop();
  await standby?.drop();
});

const data = async (url: string) => {
  const res = await send(app, 'GET', url);
  expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
  return res.json().data;
};

it('the collections read from DATABASE_READ_URL', async () => {
  expect(await data('/api/purchases')).toEqual([]);
  expect(await data('/api/orders')).toEqual([]);
  expect(await data('/api/inventory')).toEqual([]);
  expect(await data(`/api/inventory/${id}/movements`)).toEqual([]);
  // The same collections on the primary hold what was written.
  const { rows } = await primary.pool.query<{ n: number }>(
    'SELECT (SELECT count(*) FROM historial_compras)::int + (SELECT count(*) FROM pedidos)::int AS n',
  );
  expect(rows[0]!.n).toBe(3);
});

it('single resources, reservations, replays and writes read the primary', async () => {
  expect((await data(`/api/purchases/${purchaseId}`)).id).toBe(purchaseId);
  expect((await data(`/api/inventory/${id}`)).attributes).toMatchObject({ cantidad: 6, reservado: 1 });
  expect(await data('/api/reservations')).toHaveLength(1);
  const replay = await send(app, 'POST', '/api/purchases', {
    body: purchaseBody(id, 2),
    headers: { 'idempotency-key': 'read-pool' },
  });
  expect(replay.statusCode).toBe(201);
  expect(replay.headers['idempotent-replayed']).toBe('true');
  expect((await send(app, 'POST', '/api/purchases', { body: purchaseBody(id, 6) })).statusCode).toBe(201);
  expect((await send(app, 'POST', '/api/purchases', { body: purchaseBody(id, 1) })).statusCode).toBe(409);
  const { rows } = await standby.pool.query<{ n: number }>(
    'SELECT (SELECT count(*) FROM inventario)::int + (SELECT count(*) FROM historial_compras)::int AS n',
  );
  expect(rows[0]!.n).toBe(0);
});

it('/health reports the standby beside the primary', async () => {
  const health = await app.inject({ method: 'GET', url: '/health' });
  expect(health.statusCode).toBe(200);
  expect(health.json().checks).toMatchObject({ database: 'ok', standby: 'ok' });
});
