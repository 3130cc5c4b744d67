/**
 * Races guarded against, on two Inventory instances sharing one database (each with its own expiry
 * sweeper), over real HTTP:
 * - reservations racing purchases for the last units: units held and units sold never add up to more
 *   than the stock;
 * - confirm racing expiry: a confirmation sent around `expira_at` either sells the units (200) or
 *   finds the reservation expired (409), never both and never neither; the two sweepers expire each
 *   reservation once;
 * - cancel racing confirm: exactly one of them wins, and the reservation and the stock show which.
 * After each race the books hold (cantidad + reservado + Σ sold − Σ cancelled = initial) and so does
 * the ledger.
 */
import { expect, it } from 'vitest';
import {
  createProductIn,
  expectBooks,
  expectLedgerBalanced,
  purchaseBody,
  reservationBody,
  reservationPatch,
  setStockIn,
  useInstances,
} from './helpers.js';

const ctx = useInstances(2, { RESERVATION_SWEEP_MS: '100' });
const call = ctx.call;

async function stocked(cantidad: number): Promise<number> {
  const id = await createProductIn(ctx.products().app, 2);
  await setStockIn(ctx.app(0), id, cantidad);
  return id;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function estados(ids: string[]): Promise<Map<string, string>> {
  const { rows } = await ctx
    .db()
    .pool.query<{ id: number; estado: string }>('SELECT id, estado FROM reservas WHERE id = ANY($1::int[])', [
      ids.map(Number),
    ]);
  return new Map(rows.map((r) => [String(r.id), r.estado]));
}

it('reservations racing purchases for the last units never hold and sell more than the stock', async () => {
  const id = await stocked(10);
  const outcomes = await Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      i % 2 === 0
        ? call(i >> 1, 'POST', '/api/reservations', reservationBody([{ producto_id: id, cantidad: 1 }]))
        : call(i >> 1, 'POST', '/api/purchases', purchaseBody(id, 1)),
    ),
  );
  const won = outcomes.filter((o) => o.status === 201).length;
  console.log(`[reservations] 30 reservations and 30 purchases of 1 unit, stock 10: ${won} × 201`);
  expect(outcomes.filter((o) => o.status !== 201 && o.status !== 409)).toEqual([]);
  expect(won).toBe(10);
  const { rows } = await ctx
    .db()
    .pool.query('SELECT cantidad, reservado FROM inventario WHERE producto_id = $1', [id]);
  expect(rows[0].cantidad).toBe(0);
  await expectBooks(ctx.db(), id, 10);
  await expectLedgerBalanced(ctx.db());
});

it('confirm racing expiry: each reservation is sold or expired, exactly one of the two, once', async () => {
  const id = await stocked(100);
  const made = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      call(i, 'POST', '/api/reservations', reservationBody([{ producto_id: id, cantidad: 2 }], 1)),
    ),
  );
  expect(made.every((m) => m.status === 201)).toBe(true);
  // Each confirmation is sent from 150 ms before to 150 ms after its reservation's expira_at.
  const confirms = await Promise.all(
    made.map(async (m, i) => {
      const expiraAt = Date.parse(m.body.data.attributes.expira_at as string);
      await sleep(Math.max(0, expiraAt - Date.now() - 150 + ((i * 17) % 300)));
      return call(
        i + 1,
        'PATCH',
        `/api/reservations/${m.body.data.id}`,
        reservationPatch(m.body.data.id, 'confirmada'),
      );
    }),
  );
  expect(confirms.filter((c) => c.status !== 200 && c.status !== 409)).toEqual([]);
  const ids = made.map((m) => m.body.data.id);
  // Wait for the sweepers to expire every reservation the confirmations did not win.
  await expect
    .poll(async () => [...(await estados(ids)).values()].filter((e) => e === 'activa').length, {
      timeout: 10_000,
    })
    .toBe(0);
  const final = await estados(ids);
  confirms.forEach((c, i) => {
    expect(final.get(ids[i]!), `reservation ${ids[i]}`).toBe(c.status === 200 ? 'confirmada' : 'expirada');
  });
  const confirmed = confirms.filter((c) => c.status === 200).length;
  console.log(`[reservations] confirm racing expiry: ${confirmed} confirmed, ${20 - confirmed} expired`);
  const { rows } = await ctx.db().pool.query<{ causa: string; n: number }>(
    `SELECT causa, count(*)::int AS n FROM movimientos_inventario
     WHERE producto_id = $1 AND causa IN ('confirmation', 'expiry') GROUP BY causa`,
    [id],
  );
  const count = (causa: string) => rows.find((r) => r.causa === causa)?.n ?? 0;
  expect(count('confirmation')).toBe(confirmed);
  expect(count('expiry')).toBe(20 - confirmed);
  const expiredEvents = await ctx.db().pool.query(
    `SELECT data->>'reservation_id' AS id, count(*)::int AS n FROM outbox
     WHERE type = 'reservation.expired' AND data->>'reservation_id' = ANY($1::text[]) GROUP BY 1`,
    [ids],
  );
  expect(expiredEvents.rows.every((r) => r.n === 1)).toBe(true);
  expect(expiredEvents.rows).toHaveLength(20 - confirmed);
  const levels = await ctx
    .db()
    .pool.query('SELECT cantidad, reservado FROM inventario WHERE producto_id = $1', [id]);
  expect(levels.rows[0]).toEqual({ cantidad: 100 - 2 * confirmed, reservado: 0 });
  await expectBooks(ctx.db(), id, 100);
  await expectLedgerBalanced(ctx.db());
});

it('cancel racing confirm: exactly one wins, and the stock shows which', async () => {
  const id = await stocked(100);
  const made = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      call(i, 'POST', '/api/reservations', reservationBody([{ producto_id: id, cantidad: 3 }])),
    ),
  );
  const ids = made.map((m) => m.body.data.id);
  const races = await Promise.all(
    ids.map(async (rid, i) => {
      const [confirm, cancel] = await Promise.all([
        call(i, 'PATCH', `/api/reservations/${rid}`, reservationPatch(rid, 'confirmada')),
        call(i + 1, 'PATCH', `/api/reservations/${rid}`, reservationPatch(rid, 'cancelada')),
      ]);
      return { confirm: confirm.status, cancel: cancel.status };
    }),
  );
  const final = await estados(ids);
  races.forEach((r, i) => {
    expect([r.confirm, r.cancel].sort()).toEqual([200, 409]);
    expect(final.get(ids[i]!)).toBe(r.confirm === 200 ? 'confirmada' : 'cancelada');
  });
  const confirmed = races.filter((r) => r.confirm === 200).length;
  console.log(`[reservations] cancel racing confirm: ${confirmed} confirmed, ${20 - confirmed} cancelled`);
  const levels = await ctx
    .db()
    .pool.query('SELECT cantidad, reservado FROM inventario WHERE producto_id = $1', [id]);
  expect(levels.rows[0]).toEqual({ cantidad: 100 - 3 * confirmed, reservado: 0 });
  await expectBooks(ctx.db(), id, 100);
  await expectLedgerBalanced(ctx.db());
});
