import { withTransaction } from '@catalogo/kit/db';
import { notFound } from '@catalogo/kit/errors';
import type pg from 'pg';
import type { Counter } from 'prom-client';
import type { ProductResource, ProductsClient } from '../products-client.js';
import { markCancelled } from '../purchases/purchases.repository.js';
import { outcomeOf } from '../purchases/purchases.service.js';
import type { StockChanges } from '../stock/stock.metrics.js';
import { moveStocks } from '../stock/stock.repository.js';
import { applied } from '../stock/stock.service.js';
import { type Caller, priceLines, shortLines } from './orders.lines.js';
import { lockOrder, markOrderCancelled, type OrderRow, placeOrder } from './orders.repository.js';
import type { LineInputT } from './orders.schemas.js';

export interface OrderDeps {
  pool: pg.Pool;
  products: ProductsClient;
  /** `orders_total{outcome}`. */
  outcomes: Counter<'outcome'>;
  stockChanges: StockChanges;
}

export interface OrderDone {
  order: OrderRow;
  /** The products as fetched for the order, in line order. */
  products: ProductResource[];
}

type Record = (db: pg.Pool | pg.PoolClient) => Promise<OrderDone>;

/**
 * The order saga: fetch and price every product in one request to Products, outside any
 * transaction; then `write` records every line or none. A refusal is thrown, having written nothing.
 */
async function orderSaga<T>(
  deps: OrderDeps,
  lineas: LineInputT[],
  caller: Caller,
  write: (record: Record) => Promise<T>,
): Promise<T> {
  try {
    const priced = await priceLines(deps.products, lineas, caller);
    const result = await write(async (db) => {
      const placed = await placeOrder(db, priced.lines, priced.total);
      if (!placed.ok) throw shortLines(placed.short);
      return { order: placed.order, products: priced.products };
    });
    deps.outcomes.inc({ outcome: 'completed' });
    // Committed: one movement per line.
    deps.stockChanges.inc({ causa: 'purchase' }, lineas.length);
    return result;
  } catch (err) {
    deps.outcomes.inc({ outcome: outcomeOf(err) });
    throw err;
  }
}

/** An order recorded by one statement, atomic on its own. */
export const createOrder = (deps: OrderDeps, lineas: LineInputT[], caller: Caller) =>
  orderSaga(deps, lineas, caller, (record) => record(deps.pool));

/**
 * The same for a request that must leave a record of its outcome (an idempotency key): `settle` runs
 * in the order's transaction, so what it writes commits with the order or not at all.
 */
export const createOrderSettled = <T>(
  deps: OrderDeps,
  lineas: LineInputT[],
  caller: Caller,
  settle: (tx: pg.PoolClient, done: OrderDone) => Promise<T>,
) =>
  orderSaga(deps, lineas, caller, (record) =>
    withTransaction(deps.pool, async (tx) => settle(tx, await record(tx))),
  );

export const ORDER_NOT_FOUND = 'Pedido no encontrado';

/**
 * Cancels an order: every line's units go back to `cantidad` through the stock module (in product-id
 * order, ledger `cancellation`), every line reads `cancelada` with its `purchase.cancelled`, and the
 * order `cancelado` with `order.cancelled`, all in one transaction. Cancelling a cancelled order
 * changes nothing; units that no longer fit a stock are a 409 `stock_overflow` and nothing changes.
 * `check` sees the locked order before anything changes (a precondition).
 */
export async function cancelOrder(
  { pool, stockChanges }: Pick<OrderDeps, 'pool' | 'stockChanges'>,
  id: number,
  check: (current: OrderRow) => void = () => {},
): Promise<OrderRow> {
  let moved = 0;
  const row = await withTransaction<OrderRow>(pool, async (tx) => {
    const current = await lockOrder(tx, id);
    if (!current) throw notFound(ORDER_NOT_FOUND);
    check(current);
    if (current.estado === 'cancelado') return current;
    const results = await moveStocks(
      tx,
      current.lineas.map((line) => ({
        productoId: line.producto_id,
        causa: 'cancellation' as const,
        delta: line.cantidad,
        source: { type: 'orders' as const, id },
      })),
    );
    for (const result of results) applied(result);
    moved = results.length;
    await markCancelled(
      tx,
      current.lineas.map((line) => line.purchase_id),
    );
    const cancelado_at = await markOrderCancelled(tx, id);
    return { ...current, estado: 'cancelado', cancelado_at };
  });
  stockChanges.inc({ causa: 'cancellation' }, moved);
  return row;
}
