/**
 * POST /api/orders: a cart checked out at once. Every line is sold or none is: a short or missing
 * line refuses the whole order with one error per such line and writes nothing, emits nothing.
 */
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../../test/support/database.js';
import {
  buildInventory,
  closedPort,
  databaseState,
  expectError,
  expectLedgerBalanced,
  expectNoWrite,
  ISO_UTC,
  metric,
  orderBody,
  send,
  startFakeProducts,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();

const post = (body: unknown, headers: Record<string, string | undefined> = {}) =>
  send(ctx.app(), 'POST', '/api/orders', { body, headers });

async function stocked(precio: number, cantidad: number): Promise<number> {
  const id = await ctx.createProduct(precio);
  await ctx.setStock(id, cantidad);
  return id;
}

const eventsSince = async (seq: number) =>
  (
    await ctx
      .db()
      .pool.query<{ type: string; producto_id: number | null; data: Record<string, unknown>; seq: string }>(
        'SELECT type, producto_id, data, seq FROM outbox WHERE seq > $1 ORDER BY seq',
        [seq],
      )
  ).rows;

const lastSeq = async () =>
  Number((await ctx.db().pool.query('SELECT coalesce(max(seq), 0) AS s FROM outbox')).rows[0].s);

describe('POST /api/orders — success', () => {
  it('sells every line, records one purchase per line pointing back, and answers 201 with the products', async () => {
    const [a, b, c] = [await stocked(0.1, 10), await stocked(19.99, 5), await stocked(2.5, 3)];
    const seq = await lastSeq();
    const res = await post(
      orderBody([
        { producto_id: b, cantidad: 2 },
        { producto_id: a, cantidad: 3 },
        { producto_id: c, cantidad: 3 },
      ]),
    );
    expect(res.statusCode).toBe(201);
    const body = res.json();
    const id = body.data.id;
    expect(res.headers.location).toBe(`/api/orders/${id}`);
    expect(body.data).toEqual({
      type: 'orders',
      id: expect.stringMatching(/^[1-9][0-9]*$/),
      attributes: {
        lineas: [
          { producto_id: b, cantidad: 2, precio_unitario: 19.99, total: 39.98 },
          { producto_id: a, cantidad: 3, precio_unitario: 0.1, total: 0.3 },
          { producto_id: c, cantidad: 3, precio_unitario: 2.5, total: 7.5 },
        ],
        total: 47.78,
        estado: 'completado',
        created_at: expect.stringMatching(ISO_UTC),
        cancelado_at: null,
      },
      relationships: {
        purchases: { data: [expect.any(Object), expect.any(Object), expect.any(Object)] },
        reservation: { data: null },
      },
      links: { self: `/api/orders/${id}` },
    });
    expect(body.included.map((p: { id: string }) => p.id)).toEqual([String(b), String(a), String(c)]);
    expect([await stockOf(ctx.db(), a), await stockOf(ctx.db(), b), await stockOf(ctx.db(), c)]).toEqual([
      7, 3, 0,
    ]);

    // Each line is a purchase of its own, in line order, whose order relationship points back.
    const purchases = body.data.relationships.purchases.data as { type: string; id: string }[];
    for (const [index, ref] of purchases.entries()) {
      expect(ref.type).toBe('purchases');
      const purchase = (await send(ctx.app(), 'GET', `/api/purchases/${ref.id}`)).json().data;
      expect(purchase.attributes).toMatchObject({
        producto_id: body.data.attributes.lineas[index].producto_id,
        cantidad: body.data.attributes.lineas[index].cantidad,
        estado: 'completada',
        cancelada_at: null,
      });
      expect(purchase.relationships.order).toEqual({ data: { type: 'orders', id } });
    }

    // Exactly the events of an order: a stock change per product, a purchase per line, the order.
    const events = await eventsSince(seq);
    expect(events.map((e) => e.type)).toEqual([
      'inventory.updated',
      'inventory.updated',
      'inventory.updated',
      'purchase.completed',
      'purchase.completed',
      'purchase.completed',
      'order.completed',
    ]);
    // Stock changes in product-id order, the order in which the rows were locked.
    expect(events.slice(0, 3).map((e) => e.producto_id)).toEqual([a, b, c].sort((x, y) => x - y));
    expect(events.slice(0, 3).every((e) => e.data.causa === 'purchase')).toBe(true);
    expect(events.slice(3, 6).map((e) => e.data)).toEqual(
      purchases.map((ref, index) => ({
        purchase_id: ref.id,
        order_id: id,
        producto_id: body.data.attributes.lineas[index].producto_id,
        cantidad: body.data.attributes.lineas[index].cantidad,
        precio_unitario: body.data.attributes.lineas[index].precio_unitario,
        total: body.data.attributes.lineas[index].total,
      })),
    );
    expect(events[6]!.data).toEqual({
      order_id: id,
      lineas: body.data.attributes.lineas,
      total: 47.78,
      reservation_id: null,
    });
    // One movement per product, naming the order.
    const { rows } = await ctx.db().pool.query(
      `SELECT producto_id, causa, delta, source_type, source_id FROM movimientos_inventario
       WHERE source_type = 'orders' AND source_id = $1 ORDER BY producto_id`,
      [Number(id)],
    );
    expect(rows).toEqual(
      [
        [a, -3],
        [b, -2],
        [c, -3],
      ].map(([producto_id, delta]) => ({
        producto_id,
        causa: 'purchase',
        delta,
        source_type: 'orders',
        source_id: Number(id),
      })),
    );
    await expectLedgerBalanced(ctx.db());
    expect(await metric(ctx.app(), 'orders_total', { outcome: 'completed' })).toBeGreaterThanOrEqual(1);

    const read = await send(ctx.app(), 'GET', `/api/orders/${id}`);
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual({ data: body.data, links: { self: `/api/orders/${id}` } });
  });

  it('sells a single line, and the last units of a product', async () => {
    const a = await stocked(3, 2);
    const res = await post(orderBody([{ producto_id: a, cantidad: 2 }]));
    expect(res.statusCode).toBe(201);
    expect(await stockOf(ctx.db(), a)).toBe(0);
  });
});

describe('POST /api/orders — refusals write nothing and emit nothing', () => {
  it('409 with one error per short line, each with its pointer and meta.disponible', async () => {
    const [a, b, c] = [await stocked(1, 5), await stocked(1, 1), await stocked(1, 0)];
    const none = await ctx.createProduct(1);
    const res = await expectNoWrite(ctx.db(), () =>
      post(
        orderBody([
          { producto_id: a, cantidad: 5 },
          { producto_id: b, cantidad: 2 },
          { producto_id: c, cantidad: 1 },
          { producto_id: none, cantidad: 1 },
        ]),
      ),
    );
    const errors = expectError(res, 409, [
      { pointer: '/data/attributes/lineas/1/cantidad' },
      { pointer: '/data/attributes/lineas/2/cantidad' },
      { pointer: '/data/attributes/lineas/3/cantidad' },
    ]);
    expect(errors.map((e) => [e.detail, e.meta])).toEqual([
      ['Inventario insuficiente', { disponible: 1 }],
      ['Inventario insuficiente', { disponible: 0 }],
      ['Inventario insuficiente', { disponible: 0 }],
    ]);
  });

  it('404 with one error per line whose product does not exist', async () => {
    const a = await stocked(1, 5);
    const res = await expectNoWrite(ctx.db(), () =>
      post(
        orderBody([
          { producto_id: 1_999_999_991, cantidad: 1 },
          { producto_id: a, cantidad: 1 },
          { producto_id: 1_999_999_992, cantidad: 1 },
        ]),
      ),
    );
    const errors = expectError(res, 404, [
      { pointer: '/data/attributes/lineas/0/producto_id' },
      { pointer: '/data/attributes/lineas/2/producto_id' },
    ]);
    expect(errors.every((e) => e.detail === 'Producto no encontrado')).toBe(true);
  });

  it('400 for a product repeated in another line, pointing at the repetition', async () => {
    const a = await stocked(1, 5);
    const b = await stocked(1, 5);
    const res = await expectNoWrite(ctx.db(), () =>
      post(
        orderBody([
          { producto_id: a, cantidad: 1 },
          { producto_id: b, cantidad: 1 },
          { producto_id: a, cantidad: 2 },
        ]),
      ),
    );
    expectError(res, 400, { pointer: '/data/attributes/lineas/2/producto_id' });
  });

  it('422 for a line whose total the column cannot hold, and for an order whose total cannot', async () => {
    const dear = await stocked(99_999_999.99, 10);
    const half = await stocked(50_000_000, 10);
    const line = await expectNoWrite(ctx.db(), () => post(orderBody([{ producto_id: dear, cantidad: 2 }])));
    expectError(line, 422, { pointer: '/data/attributes/lineas/0/cantidad' });
    const whole = await expectNoWrite(ctx.db(), () =>
      post(
        orderBody([
          { producto_id: half, cantidad: 1 },
          { producto_id: dear, cantidad: 1 },
        ]),
      ),
    );
    expectError(whole, 422, { pointer: '/data/attributes/lineas' });
  });

  it.each([
    ['no lines', { lineas: [] }, { pointer: '/data/attributes/lineas' }],
    [
      '101 lines',
      { lineas: Array.from({ length: 101 }, (_, i) => ({ producto_id: i + 1, cantidad: 1 })) },
      { pointer: '/data/attributes/lineas' },
    ],
    [
      'a cantidad of 0',
      { lineas: [{ producto_id: 1, cantidad: 0 }] },
      { pointer: '/data/attributes/lineas/0/cantidad' },
    ],
    [
      'a text producto_id',
      { lineas: [{ producto_id: '1', cantidad: 1 }] },
      { pointer: '/data/attributes/lineas/0/producto_id' },
    ],
    [
      'an unknown line member',
      { lineas: [{ producto_id: 1, cantidad: 1, color: 'rojo' }] },
      { pointer: '/data/attributes/lineas/0/color' },
    ],
    [
      'a read-only total',
      { lineas: [{ producto_id: 1, cantidad: 1 }], total: 3 },
      { pointer: '/data/attributes/total' },
    ],
    ['lineas not a list', { lineas: { producto_id: 1 } }, { pointer: '/data/attributes/lineas' }],
  ])('400 for %s', async (_name, attributes, source) => {
    const res = await expectNoWrite(ctx.db(), () => post({ data: { type: 'orders', attributes } }));
    expectError(res, 400, source);
  });

  it('403 for a client id, 409 for another type, 415 for JSON, 401 without a key', async () => {
    const lineas = [{ producto_id: 1, cantidad: 1 }];
    await expectNoWrite(ctx.db(), async () => {
      expectError(await post({ data: { type: 'orders', id: '9', attributes: { lineas } } }), 403, {
        pointer: '/data/id',
      });
      expectError(await post({ data: { type: 'purchases', attributes: { lineas } } }), 409, {
        pointer: '/data/type',
      });
      expectError(await post(orderBody(lineas), { 'content-type': 'application/json' }), 415);
      expectError(await post(orderBody(lineas), { 'x-api-key': undefined }), 401);
    });
  });
});

describe('POST /api/orders — Idempotency-Key', () => {
  it('a retry with the same key and body replays the order and sells nothing more; another body is a 422', async () => {
    const a = await stocked(1.5, 10);
    const body = orderBody([{ producto_id: a, cantidad: 4 }]);
    const key = { 'idempotency-key': `pedido-${a}` };
    const first = await post(body, key);
    expect(first.statusCode).toBe(201);
    const again = await expectNoWrite(ctx.db(), () => post(body, key));
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.body).toBe(first.body);
    expect(await stockOf(ctx.db(), a)).toBe(6);
    const other = await expectNoWrite(ctx.db(), () =>
      post(orderBody([{ producto_id: a, cantidad: 5 }]), key),
    );
    expectError(other, 422, { header: 'Idempotency-Key' });
  });

  it('a refusal is stored and replayed too, even once the stock would allow the order', async () => {
    const a = await stocked(1, 1);
    const body = orderBody([{ producto_id: a, cantidad: 2 }]);
    const key = { 'idempotency-key': `corto-${a}` };
    expectError(await post(body, key), 409, { pointer: '/data/attributes/lineas/0/cantidad' });
    await ctx.setStock(a, 10);
    const again = await post(body, key);
    expectError(again, 409);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await stockOf(ctx.db(), a)).toBe(10);
  });
});

describe('POST /api/orders — the Products service', () => {
  it('asks for every product of the order in one request, with filter[id]', async () => {
    const fake = await startFakeProducts();
    const db = await createTestDatabase('inventory');
    const app = await buildInventory(db.url, fake.url);
    try {
      fake.prices.set(11, 2).set(12, 3).set(13, 4);
      await db.pool.query('INSERT INTO inventario (producto_id, cantidad) VALUES (11, 0), (12, 0), (13, 0)');
      await db.pool.query(
        "SELECT mover_stock(p, 'set', 10, 0, NULL, NULL, NULL) FROM unnest(ARRAY[11, 12, 13]) AS p",
      );
      const res = await send(app, 'POST', '/api/orders', {
        body: orderBody([
          { producto_id: 13, cantidad: 1 },
          { producto_id: 11, cantidad: 2 },
          { producto_id: 12, cantidad: 3 },
        ]),
      });
      expect(res.statusCode).toBe(201);
      expect(res.json().data.attributes.total).toBe(4 + 4 + 9);
      expect(fake.requests.map((r) => decodeURIComponent(r.url))).toEqual([
        '/api/products?filter[id]=13,11,12&page[size]=3',
      ]);
    } finally {
      await app.close();
      await db.drop();
      await fake.close();
    }
  });

  it('503 while Products is down, writing nothing', async () => {
    const db = await createTestDatabase('inventory');
    const app = await buildInventory(db.url, `http://127.0.0.1:${await closedPort()}`, {
      PRODUCTS_RETRIES: '1',
    });
    try {
      const before = await databaseState(db);
      const res = await send(app, 'POST', '/api/orders', {
        body: orderBody([{ producto_id: 1, cantidad: 1 }]),
      });
      expectError(res, 503);
      expect(res.json().errors[0].detail).toBe('Servicio de productos no disponible');
      expect(await databaseState(db)).toEqual(before);
      expect(await metric(app, 'orders_total', { outcome: 'products_unavailable' })).toBe(1);
    } finally {
      await app.close();
      await db.drop();
    }
  });
});
