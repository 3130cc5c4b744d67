/**
 * `stock_changes_total{causa}` and `reservations_expired_total`: every committed stock change is
 * counted under its cause, one per ledger movement, so the counter agrees with the ledger cause by
 * cause; a change refused or rolled back (after its movement was written, even) counts nothing.
 */
import { describe, expect, it } from 'vitest';
import {
  adjustmentBody,
  MAX_INT,
  metric,
  orderBody,
  purchaseBody,
  reservationBody,
  reservationPatch,
  send,
  useInventoryApp,
} from './helpers.js';

// A quick sweeper: the reservation made to expire does so within the test.
const ctx = useInventoryApp({ RESERVATION_SWEEP_MS: '100' });

const CAUSES = [
  'set',
  'adjustment',
  'purchase',
  'cancellation',
  'reservation',
  'confirmation',
  'release',
  'expiry',
] as const;

async function counters(): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  for (const causa of CAUSES) values[causa] = (await metric(ctx.app(), 'stock_changes_total', { causa }))!;
  values.expired = (await metric(ctx.app(), 'reservations_expired_total'))!;
  return values;
}

const lastMovement = async () =>
  Number(
    (await ctx.db().pool.query('SELECT coalesce(max(id), 0) AS id FROM movimientos_inventario')).rows[0].id,
  );

/** The ledger's movements after `id`, counted by cause, every cause present. */
async function ledgerSince(id: number): Promise<Record<string, number>> {
  const { rows } = await ctx
    .db()
    .pool.query<{ causa: string; n: number }>(
      'SELECT causa, count(*)::int AS n FROM movimientos_inventario WHERE id > $1 GROUP BY causa',
      [id],
    );
  return Object.fromEntries(CAUSES.map((causa) => [causa, rows.find((row) => row.causa === causa)?.n ?? 0]));
}

const deltas = (before: Record<string, number>, after: Record<string, number>) =>
  Object.fromEntries(Object.keys(before).map((key) => [key, after[key]! - before[key]!]));

async function stocked(cantidad: number): Promise<number> {
  const id = await ctx.createProduct(3);
  await ctx.setStock(id, cantidad);
  return id;
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  send(ctx.app(), 'POST', url, { body, headers });

describe('stock_changes_total{causa}', () => {
  it('exports every cause from the start', async () => {
    for (const causa of CAUSES)
      expect(await metric(ctx.app(), 'stock_changes_total', { causa }), causa).toBeGreaterThanOrEqual(0);
    expect(await metric(ctx.app(), 'reservations_expired_total')).toBeGreaterThanOrEqual(0);
  });

  it('counts each committed change under its cause, one per movement, as the ledger records them', async () => {
    const [a, b] = [await stocked(100), await stocked(100)];
    const since = await lastMovement();
    const before = await counters();
    const ok = (status: number) => expect([200, 201]).toContain(status);

    // set, adjustment
    ok(
      (
        await send(ctx.app(), 'PATCH', `/api/inventory/${a}`, {
          body: { data: { type: 'inventories', id: String(a), attributes: { cantidad: 90 } } },
        })
      ).statusCode,
    );
    ok((await post(`/api/inventory/${b}/adjustments`, adjustmentBody({ delta: -5 }))).statusCode);
    // purchases: grouped (no key) and in the caller's transaction (a key); one cancelled
    const bought = await post('/api/purchases', purchaseBody(a, 1));
    ok(bought.statusCode);
    ok((await post('/api/purchases', purchaseBody(b, 2), { 'idempotency-key': `compra-${a}` })).statusCode);
    const purchaseId = bought.json().data.id;
    ok(
      (
        await send(ctx.app(), 'PATCH', `/api/purchases/${purchaseId}`, {
          body: { data: { type: 'purchases', id: purchaseId, attributes: { estado: 'cancelada' } } },
        })
      ).statusCode,
    );
    // orders of two lines: with and without a key; one cancelled (two movements)
    const lines = [
      { producto_id: a, cantidad: 1 },
      { producto_id: b, cantidad: 1 },
    ];
    const order = await post('/api/orders', orderBody(lines));
    ok(order.statusCode);
    ok((await post('/api/orders', orderBody(lines), { 'idempotency-key': `pedido-${a}` })).statusCode);
    const orderId = order.json().data.id;
    ok(
      (
        await send(ctx.app(), 'PATCH', `/api/orders/${orderId}`, {
          body: { data: { type: 'orders', id: orderId, attributes: { estado: 'cancelado' } } },
        })
      ).statusCode,
    );
    // reservations of two lines: one confirmed, one cancelled, one left to expire
    const reserved = await Promise.all(
      [600, 600, 1].map(async (expira) => {
        const res = await post('/api/reservations', reservationBody(lines, expira));
        ok(res.statusCode);
        return res.json().data.id as string;
      }),
    );
    const patchReservation = (id: string, estado: string) =>
      send(ctx.app(), 'PATCH', `/api/reservations/${id}`, { body: reservationPatch(id, estado) });
    ok((await patchReservation(reserved[0]!, 'confirmada')).statusCode);
    ok((await patchReservation(reserved[1]!, 'cancelada')).statusCode);
    await expect
      .poll(async () => (await counters()).expired! - before.expired!, { timeout: 15_000, interval: 100 })
      .toBe(1);

    const counted = deltas(before, await counters());
    expect(counted).toEqual({
      set: 1,
      adjustment: 1,
      purchase: 2 + 2 * 2,
      cancellation: 1 + 2,
      reservation: 3 * 2,
      confirmation: 2,
      release: 2,
      expiry: 2,
      expired: 1,
    });
    const { expired: _, ...movements } = counted;
    expect(movements).toEqual(await ledgerSince(since));
  });

  it('counts nothing for a change refused or rolled back, nor for one that changes nothing', async () => {
    const a = await stocked(3);
    const full = await stocked(MAX_INT - 1);
    // A purchase and an order line of `full`, then stock that leaves no room to give them back.
    const purchase = await post('/api/purchases', purchaseBody(full, 1));
    const order = await post(
      '/api/orders',
      orderBody([
        { producto_id: full, cantidad: 1 },
        { producto_id: a, cantidad: 1 },
      ]),
    );
    expect([purchase.statusCode, order.statusCode]).toEqual([201, 201]);
    await ctx.setStock(full, MAX_INT);
    const purchaseId = purchase.json().data.id;
    const orderId = order.json().data.id;
    const reservation = await post(
      '/api/reservations',
      reservationBody([{ producto_id: a, cantidad: 1 }], 600),
    );
    const reservationId = reservation.json().data.id;
    expect(
      (
        await send(ctx.app(), 'PATCH', `/api/reservations/${reservationId}`, {
          body: reservationPatch(reservationId, 'cancelada'),
        })
      ).statusCode,
    ).toBe(200);

    const since = await lastMovement();
    const before = await counters();
    const refused = [
      // Refused by the stock: nothing written.
      await post('/api/purchases', purchaseBody(a, 50)),
      await post('/api/purchases', purchaseBody(a, 50), { 'idempotency-key': `sin-stock-${a}` }),
      await post(`/api/inventory/${a}/adjustments`, adjustmentBody({ delta: -50 })),
      await post(
        '/api/orders',
        orderBody([
          { producto_id: full, cantidad: 1 },
          { producto_id: a, cantidad: 50 },
        ]),
      ),
      await post('/api/reservations', reservationBody([{ producto_id: a, cantidad: 50 }], 600)),
      // Rolled back after its movements were written: the units no longer fit the stock.
      await send(ctx.app(), 'PATCH', `/api/purchases/${purchaseId}`, {
        body: { data: { type: 'purchases', id: purchaseId, attributes: { estado: 'cancelada' } } },
      }),
      await send(ctx.app(), 'PATCH', `/api/orders/${orderId}`, {
        body: { data: { type: 'orders', id: orderId, attributes: { estado: 'cancelado' } } },
      }),
    ];
    expect(refused.map((res) => res.statusCode)).toEqual([409, 409, 409, 409, 409, 409, 409]);
    // Already cancelled: answered 200, nothing changes.
    expect(
      (
        await send(ctx.app(), 'PATCH', `/api/reservations/${reservationId}`, {
          body: reservationPatch(reservationId, 'cancelada'),
        })
      ).statusCode,
    ).toBe(200);

    expect(await ledgerSince(since)).toEqual(Object.fromEntries(CAUSES.map((causa) => [causa, 0])));
    expect(await counters()).toEqual(before);
  });
});
