/**
 * Race guarded against: the lost update. An adjustment computed as "read the stock, add delta,
 * write it back" without holding the row lock between the read and the write can overwrite a
 * purchase that committed in between (or two adjustments can overwrite each other), so units
 * appear or vanish. Adjustments (+ and −), purchases and absolute sets race on one product here:
 * - with only adjustments and purchases, final = initial + Σ adjustments − Σ purchased, exactly;
 * - with sets interleaved no sum can be predicted, but every change must start from the quantity
 *   the previous one left: the `inventory.updated` events form one unbroken chain ending at the
 *   final stock, and each adjustment or purchase moved the stock by exactly its amount.
 */
import { expect, it } from 'vitest';
import {
  adjustmentBody,
  expectLedgerBalanced,
  expectUnbrokenChain,
  historyOf,
  purchaseBody,
  seeded,
  send,
  setBody,
  shuffled,
  stockEvents,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();

type Op = { kind: 'purchase' | 'adjustment' | 'set'; n: number };

async function run(id: number, op: Op) {
  const app = ctx.app();
  const res =
    op.kind === 'purchase'
      ? await send(app, 'POST', '/api/purchases', { body: purchaseBody(id, op.n) })
      : op.kind === 'adjustment'
        ? await send(app, 'POST', `/api/inventory/${id}/adjustments`, {
            body: adjustmentBody({ delta: op.n }),
          })
        : await send(app, 'PATCH', `/api/inventory/${id}`, { body: setBody(id, { cantidad: op.n }) });
  return { ...op, status: res.statusCode };
}

it('adjustments racing purchases lose no update: final = initial + Σ adjustments − Σ purchased', async () => {
  const random = seeded(7);
  const initial = 500;
  const id = await ctx.createProduct(4.2);
  await ctx.setStock(id, initial);
  const ops = shuffled<Op>(
    [
      ...Array.from({ length: 100 }, () => ({ kind: 'purchase' as const, n: 1 + Math.floor(random() * 5) })),
      ...Array.from({ length: 60 }, () => ({ kind: 'adjustment' as const, n: 1 + Math.floor(random() * 5) })),
      ...Array.from({ length: 40 }, () => ({
        kind: 'adjustment' as const,
        n: -(1 + Math.floor(random() * 3)),
      })),
    ],
    random,
  );
  const started = performance.now();
  const outcomes = await Promise.all(ops.map((op) => run(id, op)));
  const ms = Math.round(performance.now() - started);

  // The stock never runs short here, so every operation must succeed.
  expect(outcomes.filter((o) => o.status !== 201)).toEqual([]);
  const purchased = outcomes.filter((o) => o.kind === 'purchase').reduce((sum, o) => sum + o.n, 0);
  const adjusted = outcomes.filter((o) => o.kind === 'adjustment').reduce((sum, o) => sum + o.n, 0);
  const final = await stockOf(ctx.db(), id);
  console.log(
    `[lost-update] ${ops.length} ops (100 purchases of ${purchased} units, 100 adjustments Σ ${adjusted}): ` +
      `${initial} → ${final} in ${ms} ms`,
  );
  expect(final).toBe(initial + adjusted - purchased);
  await expectLedgerBalanced(ctx.db());
  expect(await historyOf(ctx.db(), id)).toEqual({ rows: 100, units: purchased });
  const events = await stockEvents(ctx.db(), id);
  expect(events).toHaveLength(1 + ops.length);
  expectUnbrokenChain(events, 0, final!);
});

it('concurrent first changes of a product without a stock row create it once and lose none', async () => {
  const id = await ctx.createProduct(1);
  const outcomes = await Promise.all(
    Array.from({ length: 40 }, (_, i) => run(id, { kind: 'adjustment', n: 1 + (i % 3) })),
  );
  expect(outcomes.map((o) => o.status)).toEqual(Array(40).fill(201));
  const added = outcomes.reduce((sum, o) => sum + o.n, 0);
  expect(await stockOf(ctx.db(), id)).toBe(added);
  await expectLedgerBalanced(ctx.db());
  expectUnbrokenChain(await stockEvents(ctx.db(), id), 0, added);
});

it('negative adjustments racing purchases for the last units never take the stock below 0', async () => {
  const random = seeded(99);
  const initial = 40;
  const id = await ctx.createProduct(1);
  await ctx.setStock(id, initial);
  const ops = shuffled<Op>(
    [
      ...Array.from({ length: 60 }, () => ({ kind: 'purchase' as const, n: 1 + Math.floor(random() * 2) })),
      ...Array.from({ length: 60 }, () => ({
        kind: 'adjustment' as const,
        n: -(1 + Math.floor(random() * 2)),
      })),
    ],
    random,
  );
  const outcomes = await Promise.all(ops.map((op) => run(id, op)));
  expect(outcomes.every((o) => o.status === 201 || o.status === 409)).toBe(true);
  const taken = outcomes.filter((o) => o.status === 201).reduce((sum, o) => sum + Math.abs(o.n), 0);
  const final = (await stockOf(ctx.db(), id))!;
  console.log(
    `[lost-update] 120 removals (purchases and −adjustments) against stock ${initial}: ` +
      `${outcomes.filter((o) => o.status === 201).length} succeeded taking ${taken}, final ${final}`,
  );
  expect(final).toBeGreaterThanOrEqual(0);
  expect(final).toBe(initial - taken);
  await expectLedgerBalanced(ctx.db());
  expectUnbrokenChain(await stockEvents(ctx.db(), id), 0, final);
});

it('absolute sets interleaved with adjustments and purchases: every change starts where the last ended', async () => {
  const random = seeded(2026);
  const id = await ctx.createProduct(2);
  await ctx.setStock(id, 200);
  const ops = shuffled<Op>(
    [
      ...Array.from({ length: 80 }, () => ({ kind: 'purchase' as const, n: 1 + Math.floor(random() * 3) })),
      ...Array.from({ length: 60 }, () => ({ kind: 'adjustment' as const, n: 1 + Math.floor(random() * 3) })),
      ...Array.from({ length: 20 }, () => ({ kind: 'set' as const, n: 50 + Math.floor(random() * 100) })),
    ],
    random,
  );
  const outcomes = await Promise.all(ops.map((op) => run(id, op)));
  const sold = outcomes.filter((o) => o.kind === 'purchase' && o.status === 201);
  expect(
    outcomes.filter((o) => o.kind !== 'purchase').every((o) => o.status === (o.kind === 'set' ? 200 : 201)),
  ).toBe(true);
  const final = (await stockOf(ctx.db(), id))!;
  console.log(
    `[lost-update] 160 ops with 20 absolute sets: ${sold.length}/80 purchases sold, final stock ${final}`,
  );

  const events = (await stockEvents(ctx.db(), id)).slice(1);
  expectUnbrokenChain(events, 200, final);
  expect(events).toHaveLength(sold.length + 80);
  const ascending = (a: number, b: number) => a - b;
  expect(
    events
      .filter((e) => e.causa === 'set')
      .map((e) => e.cantidad)
      .sort(ascending),
  ).toEqual(
    outcomes
      .filter((o) => o.kind === 'set')
      .map((o) => o.n)
      .sort(ascending),
  );
  const moves = (causa: string) =>
    events
      .filter((e) => e.causa === causa)
      .map((e) => e.cantidad - e.cantidad_anterior)
      .sort(ascending);
  expect(moves('adjustment')).toEqual(
    outcomes
      .filter((o) => o.kind === 'adjustment')
      .map((o) => o.n)
      .sort(ascending),
  );
  expect(moves('purchase')).toEqual(sold.map((o) => -o.n).sort(ascending));
  expect(await historyOf(ctx.db(), id)).toEqual({
    rows: sold.length,
    units: sold.reduce((sum, o) => sum + o.n, 0),
  });
});
