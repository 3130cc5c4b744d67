/**
 * PATCH /api/purchases/{id} (estado cancelada) and PATCH /api/orders/{id} (estado cancelado): the
 * units go back to `cantidad` in the same transaction, with their movement and events; cancelling
 * again changes nothing. Races guarded against: a purchase cancelled twice by concurrent requests
 * (its units given back twice), and a cancellation losing or duplicating units while purchases of
 * the same product run.
 */
import { describe, expect, it } from 'vitest';
import {
  expectBooks,
  expectError,
  expectLedgerBalanced,
  expectNoWrite,
  ISO_UTC,
  MAX_INT,
  orderBody,
  purchaseBody,
  send,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();

async function stocked(cantidad: number, precio = 2): Promise<number> {
  const id = await ctx.createProduct(precio);
  await ctx.setStock(id, cantidad);
  return id;
}

async function bought(id: number, cantidad: number): Promise<string> {
  const res = await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, cantidad) });
  if (res.statusCode !== 201) throw new Error(res.body);
  return res.json().data.id;
}

const cancelPurchase = (id: string, attributes: Record<string, unknown> = { estado: 'cancelada' }) =>
  send(ctx.app(), 'PATCH', `/api/purchases/${id}`, { body: { data: { type: 'purchases', id, attributes } } });

const cancelOrder = (id: string) =>
  send(ctx.app(), 'PATCH', `/api/orders/${id}`, {
    body: { data: { type: 'orders', id, attributes: { estado: 'cancelado' } } },
  });

const eventsAfter = async (seq: number) =>
  (
    await ctx
      .db()
      .pool.query<{ type: string; data: Record<string, unknown> }>(
        'SELECT type, data FROM outbox WHERE seq > $1 ORDER BY seq',
        [seq],
      )
  ).rows;
const lastSeq = async () =>
  Number((await ctx.db().pool.query('SELECT coalesce(max(seq), 0) AS s FROM outbox')).rows[0].s);

describe('PATCH /api/purchases/{id} — cancel', () => {
  it('gives the units back with a cancellation movement and events; cancelling again changes nothing', async () => {
    const id = await stocked(10);
    const purchaseId = await bought(id, 4);
    const seq = await lastSeq();
    const res = await cancelPurchase(purchaseId);
    expect(res.statusCode).toBe(200);
    expect(res.json().data.attributes).toMatchObject({
      cantidad: 4,
      estado: 'cancelada',
      cancelada_at: expect.stringMatching(ISO_UTC),
    });
    expect(res.json().links).toEqual({ self: `/api/purchases/${purchaseId}` });
    expect(await stockOf(ctx.db(), id)).toBe(10);
    expect(await eventsAfter(seq)).toEqual([
      {
        type: 'inventory.updated',
        data: {
          producto_id: id,
          cantidad_anterior: 6,
          cantidad: 10,
          reservado_anterior: 0,
          reservado: 0,
          causa: 'cancellation',
        },
      },
      {
        type: 'purchase.cancelled',
        data: { purchase_id: purchaseId, producto_id: id, cantidad: 4, order_id: null },
      },
    ]);
    const movement = await send(ctx.app(), 'GET', `/api/inventory/${id}/movements?page[size]=1`);
    expect(movement.json().data[0]).toMatchObject({
      attributes: { causa: 'cancellation', delta: 4, cantidad: 10 },
      relationships: { source: { data: { type: 'purchases', id: purchaseId } } },
    });

    const again = await expectNoWrite(ctx.db(), () => cancelPurchase(purchaseId));
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(res.json());
    await expectBooks(ctx.db(), id, 10);
    await expectLedgerBalanced(ctx.db());
  });

  it('409 for a line of an order, which is cancelled only with its order; nothing written', async () => {
    const id = await stocked(5);
    const order = await send(ctx.app(), 'POST', '/api/orders', {
      body: orderBody([{ producto_id: id, cantidad: 1 }]),
    });
    const line = order.json().data.relationships.purchases.data[0].id;
    const res = await expectNoWrite(ctx.db(), () => cancelPurchase(line));
    expect(expectError(res, 409)[0]!.detail).toBe('La compra pertenece a un pedido');
  });

  it('409 stock_overflow when the units no longer fit the stock; nothing written', async () => {
    const id = await stocked(5);
    const purchaseId = await bought(id, 2);
    await ctx.setStock(id, MAX_INT);
    const res = await expectNoWrite(ctx.db(), () => cancelPurchase(purchaseId));
    expect(expectError(res, 409)[0]!.code).toBe('stock_overflow');
  });

  it('404, 400, 409 (type or id), 415 and 401 write nothing', async () => {
    const id = await stocked(5);
    const purchaseId = await bought(id, 1);
    const patch = (path: string, body: unknown, headers: Record<string, string | undefined> = {}) =>
      send(ctx.app(), 'PATCH', path, { body, headers });
    const doc = (attributes: Record<string, unknown>, type = 'purchases', pid = purchaseId) => ({
      data: { type, id: pid, attributes },
    });
    await expectNoWrite(ctx.db(), async () => {
      expectError(await cancelPurchase('1999999999'), 404);
      expectError(await cancelPurchase(purchaseId, { estado: 'completada' }), 400, {
        pointer: '/data/attributes/estado',
      });
      expectError(await cancelPurchase(purchaseId, { estado: 'cancelada', cantidad: 2 }), 400, {
        pointer: '/data/attributes/cantidad',
      });
      expectError(await cancelPurchase(purchaseId, {}), 400, { pointer: '/data/attributes/estado' });
      expectError(await patch(`/api/purchases/${purchaseId}`, doc({ estado: 'cancelada' }, 'orders')), 409, {
        pointer: '/data/type',
      });
      expectError(
        await patch(`/api/purchases/${purchaseId}`, doc({ estado: 'cancelada' }, 'purchases', '1999999998')),
        409,
        {
          pointer: '/data/id',
        },
      );
      expectError(await patch('/api/purchases/abc', doc({ estado: 'cancelada' }, 'purchases', 'abc')), 400, {
        parameter: 'id',
      });
      expectError(
        await patch(`/api/purchases/${purchaseId}`, doc({ estado: 'cancelada' }), {
          'content-type': 'application/json',
        }),
        415,
      );
      expectError(
        await patch(`/api/purchases/${purchaseId}`, doc({ estado: 'cancelada' }), { 'x-api-key': undefined }),
        401,
      );
    });
  });

  it('the same purchase cancelled by 20 concurrent requests racing 20 purchases gives its units back once', async () => {
    const id = await stocked(100);
    const purchaseId = await bought(id, 7);
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => cancelPurchase(purchaseId)),
      ...Array.from({ length: 20 }, () =>
        send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 1) }),
      ),
    ]);
    expect(results.slice(0, 20).every((r) => r.statusCode === 200)).toBe(true);
    expect(results.slice(20).every((r) => r.statusCode === 201)).toBe(true);
    expect(await stockOf(ctx.db(), id)).toBe(100 - 20);
    const { rows } = await ctx
      .db()
      .pool.query(
        `SELECT count(*)::int AS n FROM movimientos_inventario WHERE causa = 'cancellation' AND producto_id = $1`,
        [id],
      );
    expect(rows[0].n).toBe(1);
    await expectBooks(ctx.db(), id, 100);
    await expectLedgerBalanced(ctx.db());
  });
});

describe('PATCH /api/orders/{id} — cancel', () => {
  it('gives every line back in one transaction, with events; cancelling again changes nothing', async () => {
    const [a, b] = [await stocked(10), await stocked(10)];
    const order = await send(ctx.app(), 'POST', '/api/orders', {
      body: orderBody([
        { producto_id: b, cantidad: 3 },
        { producto_id: a, cantidad: 2 },
      ]),
    });
    const orderId = order.json().data.id;
    const lines = order.json().data.relationships.purchases.data.map((p: { id: string }) => p.id);
    const seq = await lastSeq();
    const res = await cancelOrder(orderId);
    expect(res.statusCode).toBe(200);
    expect(res.json().data.attributes).toMatchObject({
      estado: 'cancelado',
      cancelado_at: expect.stringMatching(ISO_UTC),
      total: order.json().data.attributes.total,
    });
    expect([await stockOf(ctx.db(), a), await stockOf(ctx.db(), b)]).toEqual([10, 10]);
    const events = await eventsAfter(seq);
    expect(events.map((e) => e.type)).toEqual([
      'inventory.updated',
      'inventory.updated',
      'purchase.cancelled',
      'purchase.cancelled',
      'order.cancelled',
    ]);
    expect(events.slice(0, 2).map((e) => [e.data.producto_id, e.data.causa])).toEqual([
      [Math.min(a, b), 'cancellation'],
      [Math.max(a, b), 'cancellation'],
    ]);
    expect(events[4]!.data).toEqual({ order_id: orderId });
    expect(events.slice(2, 4).every((e) => e.data.order_id === orderId)).toBe(true);
    for (const line of lines) {
      const purchase = await send(ctx.app(), 'GET', `/api/purchases/${line}`);
      expect(purchase.json().data.attributes.estado).toBe('cancelada');
    }
    const again = await expectNoWrite(ctx.db(), () => cancelOrder(orderId));
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(res.json());
    await expectBooks(ctx.db(), a, 10);
    await expectBooks(ctx.db(), b, 10);
    await expectLedgerBalanced(ctx.db());
  });

  it('409 stock_overflow when one line no longer fits, nothing written; 404 for an unknown order', async () => {
    const [a, b] = [await stocked(10), await stocked(10)];
    const order = await send(ctx.app(), 'POST', '/api/orders', {
      body: orderBody([
        { producto_id: a, cantidad: 1 },
        { producto_id: b, cantidad: 1 },
      ]),
    });
    await ctx.setStock(b, MAX_INT);
    const res = await expectNoWrite(ctx.db(), () => cancelOrder(order.json().data.id));
    expect(expectError(res, 409)[0]!.code).toBe('stock_overflow');
    expectError(await cancelOrder('1999999999'), 404);
  });
});
