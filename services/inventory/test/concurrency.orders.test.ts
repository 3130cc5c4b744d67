/**
 * Races guarded against, on two Inventory instances sharing one database, over real HTTP:
 * - deadlock: orders whose lines name the same products in opposite orders lock their stock rows in
 *   product-id order whatever the line order, so two of them can never wait for each other;
 * - oversell: every line of an order is judged on the locked stock, so concurrent orders, single
 *   purchases (group-committed) and adjustments never sell more than there is, and an order that
 *   cannot be served whole sells nothing at all;
 * - a lost or phantom change: after each race the books hold (cantidad + Σ sold = initial +
 *   Σ adjustments) and so does the ledger (Σ delta = cantidad for every product).
 */
import { expect, it } from 'vitest';
import {
  adjustmentBody,
  createProductIn,
  deadlocks,
  expectBooks,
  expectLedgerBalanced,
  orderBody,
  purchaseBody,
  seeded,
  setStockIn,
  shuffled,
  useInstances,
} from './helpers.js';

const ctx = useInstances(2);
const call = (i: number, path: string, body: unknown) => ctx.call(i, 'POST', path, body);

async function stockedProducts(count: number, cantidad: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = await createProductIn(ctx.products().app, 1 + i);
    await setStockIn(ctx.app(0), id, cantidad);
    ids.push(id);
  }
  return ids;
}

type Line = { producto_id: number; cantidad: number };

/** Units sold per product by the orders that succeeded. */
function soldByOrders(outcomes: { status: number; lineas: Line[] }[]): Map<number, number> {
  const sold = new Map<number, number>();
  for (const o of outcomes.filter((o) => o.status === 201)) {
    for (const line of o.lineas)
      sold.set(line.producto_id, (sold.get(line.producto_id) ?? 0) + line.cantidad);
  }
  return sold;
}

it('100 concurrent orders over the same products in opposite line orders: no deadlock, no oversell', async () => {
  const random = seeded(13);
  const initial = 40;
  const ids = await stockedProducts(5, initial);
  const before = await deadlocks(ctx.db());
  // Every order takes 3 of the 5 products; half list them ascending, half descending.
  const orders = Array.from({ length: 100 }, (_, i) => {
    const start = Math.floor(random() * 3);
    const lineas = ids.slice(start, start + 3).map((producto_id) => ({
      producto_id,
      cantidad: 1 + Math.floor(random() * 3),
    }));
    return i % 2 === 0 ? lineas : lineas.reverse();
  });
  const started = performance.now();
  const outcomes = await Promise.all(
    orders.map(async (lineas, i) => ({ lineas, ...(await call(i, '/api/orders', orderBody(lineas))) })),
  );
  const ms = Math.round(performance.now() - started);
  const ok = outcomes.filter((o) => o.status === 201).length;
  console.log(
    `[orders] 100 orders × 3 lines over 5 products (stock ${initial} each), 2 instances: ` +
      `${ok} × 201, ${100 - ok} × 409 in ${ms} ms`,
  );
  expect(outcomes.filter((o) => o.status !== 201 && o.status !== 409)).toEqual([]);
  expect(ok).toBeGreaterThan(0);
  expect(ok).toBeLessThan(100);
  const sold = soldByOrders(outcomes);
  for (const id of ids) {
    await expectBooks(ctx.db(), id, initial);
    const { rows } = await ctx
      .db()
      .pool.query<{ cantidad: number }>('SELECT cantidad FROM inventario WHERE producto_id = $1', [id]);
    expect(rows[0]!.cantidad).toBe(initial - (sold.get(id) ?? 0));
  }
  // All or nothing: exactly the successful orders exist, each with all its lines.
  const { rows } = await ctx.db().pool.query<{ pedidos: number; lineas: number }>(
    `SELECT count(DISTINCT pedido_id)::int AS pedidos, count(*)::int AS lineas
     FROM historial_compras WHERE producto_id = ANY($1::int[])`,
    [ids],
  );
  expect(rows[0]).toEqual({ pedidos: ok, lineas: ok * 3 });
  await expectLedgerBalanced(ctx.db());
  expect(await deadlocks(ctx.db())).toBe(before);
});

it('orders racing single purchases and adjustments on the same products: the books hold', async () => {
  const random = seeded(29);
  const initial = 30;
  const ids = await stockedProducts(3, initial);
  const before = await deadlocks(ctx.db());
  type Op =
    | { kind: 'order'; lineas: Line[] }
    | { kind: 'purchase'; line: Line }
    | { kind: 'adjustment'; producto_id: number; delta: number };
  const pick = () => ids[Math.floor(random() * ids.length)]!;
  const ops = shuffled<Op>(
    [
      ...Array.from(
        { length: 50 },
        (): Op => ({
          kind: 'order',
          lineas: shuffled(ids, random)
            .slice(0, 2 + Math.floor(random() * 2))
            .map((producto_id) => ({ producto_id, cantidad: 1 + Math.floor(random() * 3) })),
        }),
      ),
      ...Array.from(
        { length: 60 },
        (): Op => ({
          kind: 'purchase',
          line: { producto_id: pick(), cantidad: 1 + Math.floor(random() * 3) },
        }),
      ),
      ...Array.from(
        { length: 40 },
        (): Op => ({
          kind: 'adjustment',
          producto_id: pick(),
          delta: random() < 0.5 ? 1 + Math.floor(random() * 4) : -(1 + Math.floor(random() * 2)),
        }),
      ),
    ],
    random,
  );
  const outcomes = await Promise.all(
    ops.map(async (op, i) => {
      const res =
        op.kind === 'order'
          ? await call(i, '/api/orders', orderBody(op.lineas))
          : op.kind === 'purchase'
            ? await call(i, '/api/purchases', purchaseBody(op.line.producto_id, op.line.cantidad))
            : await call(
                i,
                `/api/inventory/${op.producto_id}/adjustments`,
                adjustmentBody({ delta: op.delta }),
              );
      return { op, status: res.status };
    }),
  );
  const count = (status: number) => outcomes.filter((o) => o.status === status).length;
  console.log(
    `[orders] 50 orders, 60 purchases, 40 adjustments on 3 products, 2 instances: ` +
      `${count(201)} × 201, ${count(409)} × 409`,
  );
  expect(outcomes.filter((o) => o.status !== 201 && o.status !== 409)).toEqual([]);
  for (const id of ids) {
    const adjusted = outcomes
      .filter((o) => o.status === 201 && o.op.kind === 'adjustment' && o.op.producto_id === id)
      .reduce((sum, o) => sum + (o.op.kind === 'adjustment' ? o.op.delta : 0), 0);
    await expectBooks(ctx.db(), id, initial + adjusted);
  }
  await expectLedgerBalanced(ctx.db());
  expect(await deadlocks(ctx.db())).toBe(before);
});
