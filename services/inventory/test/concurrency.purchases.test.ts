/**
 * Race guarded against: overselling. Many buyers of one product arrive at once; if the stock were
 * read, checked and then written back (check-then-act), two buyers could both see the last unit
 * and both be sold it, or a write could overwrite another's decrement. The purchase decrements
 * conditionally (`cantidad >= n`) under the row lock, so buyers queue on the row and each one
 * re-checks the stock the previous one left. With stock S, the successful quantities add up to at
 * most S, the stock never goes below 0, no buyer is refused while enough stock remains, and every
 * sale has exactly one history row and one pair of events.
 */
import { expect, it } from 'vitest';
import {
  type ErrorObject,
  expectLedgerBalanced,
  expectUnbrokenChain,
  historyOf,
  purchaseBody,
  type Response,
  seeded,
  send,
  stockEvents,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();

interface Outcome {
  cantidad: number;
  res: Response;
}

/** Fires every purchase at once and waits for all of them. */
async function buyAll(
  productoId: number,
  quantities: number[],
): Promise<{ outcomes: Outcome[]; ms: number }> {
  const started = performance.now();
  const outcomes = await Promise.all(
    quantities.map(async (cantidad) => ({
      cantidad,
      res: await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(productoId, cantidad) }),
    })),
  );
  return { outcomes, ms: Math.round(performance.now() - started) };
}

async function purchaseEvents(productoId: number): Promise<number> {
  const { rows } = await ctx
    .db()
    .pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox WHERE type = 'purchase.completed' AND producto_id = $1`,
      [productoId],
    );
  return rows[0]!.n;
}

it('200 concurrent buyers of 1 unit against stock 37: exactly 37 sales', async () => {
  const id = await ctx.createProduct(2.5);
  await ctx.setStock(id, 37);
  const { outcomes, ms } = await buyAll(id, Array(200).fill(1));
  const statuses = outcomes.map((o) => o.res.statusCode);
  const sold = statuses.filter((s) => s === 201).length;
  const refused = statuses.filter((s) => s === 409).length;
  console.log(`[concurrency] 200 buyers × 1, stock 37: ${sold} × 201, ${refused} × 409 in ${ms} ms`);

  expect(sold).toBe(37);
  expect(refused).toBe(163);
  for (const { res } of outcomes.filter((o) => o.res.statusCode === 409)) {
    const error = res.json().errors[0] as ErrorObject;
    expect(error.detail).toBe('Inventario insuficiente');
    expect(error.meta).toEqual({ disponible: 0 });
  }
  expect(await stockOf(ctx.db(), id)).toBe(0);
  await expectLedgerBalanced(ctx.db());
  expect(await historyOf(ctx.db(), id)).toEqual({ rows: 37, units: 37 });
  expect(await purchaseEvents(id)).toBe(37);
  expectUnbrokenChain(await stockEvents(ctx.db(), id), 0, 0);
  const ids = outcomes.filter((o) => o.res.statusCode === 201).map((o) => o.res.json().data.id);
  expect(new Set(ids).size).toBe(37);
});

it('150 concurrent buyers of 1–5 units against stock 100: sales add up to the stock taken', async () => {
  const random = seeded(20_261_128);
  const quantities = Array.from({ length: 150 }, () => 1 + Math.floor(random() * 5));
  const initial = 100;
  const id = await ctx.createProduct(0.1);
  await ctx.setStock(id, initial);
  const { outcomes, ms } = await buyAll(id, quantities);

  const sold = outcomes.filter((o) => o.res.statusCode === 201);
  const refused = outcomes.filter((o) => o.res.statusCode === 409);
  const units = sold.reduce((sum, o) => sum + o.cantidad, 0);
  const final = (await stockOf(ctx.db(), id))!;
  console.log(
    `[concurrency] 150 buyers × 1–5 (${quantities.reduce((a, b) => a + b, 0)} units asked), stock ${initial}: ` +
      `${sold.length} × 201 (${units} units), ${refused.length} × 409, final ${final} in ${ms} ms`,
  );

  expect(sold.length + refused.length).toBe(150);
  expect(final).toBeGreaterThanOrEqual(0);
  expect(units).toBe(initial - final);
  expect(await historyOf(ctx.db(), id)).toEqual({ rows: sold.length, units });
  expect(await purchaseEvents(id)).toBe(sold.length);
  expectUnbrokenChain(await stockEvents(ctx.db(), id), 0, final);
  // Stock only fell during the race: a buyer refused for wanting n units saw fewer than n, and so
  // must every later buyer; no refusal while enough stock remained.
  for (const { cantidad, res } of refused) {
    const disponible = (res.json().errors[0] as ErrorObject).meta?.disponible as number;
    expect(disponible, `refused ${cantidad} units with ${disponible} available`).toBeLessThan(cantidad);
    expect(final).toBeLessThan(cantidad);
  }
  // Each sold purchase was priced exactly: 0.1 × n.
  for (const { cantidad, res } of sold) {
    expect(res.json().data.attributes.total).toBe(Number((cantidad / 10).toFixed(1)));
  }
});

it('the database refuses a negative stock by itself: CHECK (cantidad >= 0)', async () => {
  const id = await ctx.createProduct(1);
  await ctx.setStock(id, 2);
  await expect(
    ctx.db().pool.query('UPDATE inventario SET cantidad = -1 WHERE producto_id = $1', [id]),
  ).rejects.toMatchObject({ code: '23514' });
  await expect(
    ctx.db().pool.query('UPDATE inventario SET cantidad = cantidad - 3 WHERE producto_id = $1', [id]),
  ).rejects.toMatchObject({ code: '23514' });
  expect(await stockOf(ctx.db(), id)).toBe(2);
});
