import { withTransaction } from '@catalogo/kit/db';
import type { Deadline } from '@catalogo/kit/deadline';
import { AppError, conflict, notFound } from '@catalogo/kit/errors';
import type pg from 'pg';
import type { Counter } from 'prom-client';
import { PRODUCT_NOT_FOUND } from '../inventory/inventory.routes.js';
import { purchaseTotal } from '../money.js';
import type { ProductResource, ProductsClient } from '../products-client.js';
import type { StockChanges } from '../stock/stock.metrics.js';
import { moveStock } from '../stock/stock.repository.js';
import { applied, insufficientStock } from '../stock/stock.service.js';
import type { PurchaseRecorder } from './purchases.batcher.js';
import { lockPurchase, markCancelled, type NewPurchase, type PurchaseRow } from './purchases.repository.js';

export type PurchaseOutcomeLabel =
  | 'completed'
  | 'insufficient_stock'
  | 'product_not_found'
  | 'products_unavailable'
  | 'total_too_large'
  | 'replayed'
  | 'idempotency_conflict'
  | 'refused'
  | 'error';

export interface PurchaseDeps {
  pool: pg.Pool;
  /** Records unkeyed purchases, those that arrive together in one statement (group commit). */
  recorder: PurchaseRecorder;
  products: ProductsClient;
  outcomes: Counter<'outcome'>;
  stockChanges: StockChanges;
}

/** The `outcome` label of a failed purchase or order. */
export function outcomeOf(err: unknown): PurchaseOutcomeLabel {
  if (!(err instanceof AppError)) return 'error';
  switch (err.code) {
    case 'insufficient_stock':
      return 'insufficient_stock';
    case 'not_found':
      return 'product_not_found';
    case 'service_unavailable':
      return 'products_unavailable';
    case 'deadline_exceeded':
    case 'queue_full':
    case 'inventory_locked':
    case 'resource_locked':
    case 'database_timeout':
    case 'pool_timeout':
      return 'refused';
    case 'total_too_large':
      return 'total_too_large';
    case 'idempotency_key_in_flight':
      return 'idempotency_conflict';
    default:
      return 'error';
  }
}

export interface PurchaseDone {
  purchase: PurchaseRow;
  product: ProductResource;
}

/** What a purchase is asked, by which request, to be answered by when. */
export interface PurchaseRequest {
  productoId: number;
  cantidad: number;
  requestId: string;
  deadline: Deadline;
}

/**
 * The first step of the saga: fetch the product from the Products service outside any transaction
 * (no row lock is ever held across an HTTP call) and price the purchase exactly. The fetch stops at
 * the deadline, and so does the saga after it: nothing is written past the deadline.
 */
async function pricePurchase(
  deps: PurchaseDeps,
  { productoId, cantidad, requestId, deadline }: PurchaseRequest,
): Promise<{ product: ProductResource; priced: NewPurchase }> {
  deadline.check();
  // Batched with the purchases that arrive meanwhile, never priced from a read begun before this one.
  const product = await deps.products.getProductBatched(productoId, requestId, deadline);
  if (!product) throw notFound(PRODUCT_NOT_FOUND);
  const { unitario, total } = purchaseTotal(product.attributes.precio, cantidad);
  deadline.check();
  return { product, priced: { productoId, cantidad, unitario, total } };
}

/** The purchase saga: price it, then record it atomically in one statement (the hot path). */
export async function purchase(deps: PurchaseDeps, request: PurchaseRequest): Promise<PurchaseDone> {
  try {
    const { product, priced } = await pricePurchase(deps, request);
    const outcome = await deps.recorder.record(priced, request.deadline);
    if (!outcome.ok) throw insufficientStock(outcome.disponible);
    deps.outcomes.inc({ outcome: 'completed' });
    return { purchase: outcome.purchase, product };
  } catch (err) {
    deps.outcomes.inc({ outcome: outcomeOf(err) });
    throw err;
  }
}

/**
 * The same saga for a request that must leave a record of its outcome (an idempotency key):
 * `settle` runs in the purchase's transaction with the outcome — the purchase or the 409 of a stock
 * too low — so what it writes commits with the purchase or not at all. Resolves with what `settle`
 * returned, once committed: here the 409 is a settled outcome, not a rejection.
 */
export async function purchaseSettled<T>(
  deps: PurchaseDeps,
  request: PurchaseRequest,
  settle: (tx: pg.PoolClient, outcome: PurchaseDone | AppError) => Promise<T>,
): Promise<T> {
  try {
    const { product, priced } = await pricePurchase(deps, request);
    let label: PurchaseOutcomeLabel = 'completed';
    const result = await withTransaction(deps.pool, async (tx) => {
      const outcome = await deps.recorder.recordIn(tx, priced, request.deadline);
      if (outcome.ok) return settle(tx, { purchase: outcome.purchase, product });
      label = 'insufficient_stock';
      return settle(tx, insufficientStock(outcome.disponible));
    });
    deps.outcomes.inc({ outcome: label });
    if (label === 'completed') deps.stockChanges.inc({ causa: 'purchase' });
    return result;
  } catch (err) {
    deps.outcomes.inc({ outcome: outcomeOf(err) });
    throw err;
  }
}

export const PURCHASE_NOT_FOUND = 'Compra no encontrada';

/**
 * Cancels a purchase made on its own: its units go back to `cantidad` through the stock module
 * (ledger `cancellation`, `inventory.updated`), it reads `cancelada`, and `purchase.cancelled` is
 * emitted, all in one transaction. Cancelling a cancelled purchase changes nothing. A line of an
 * order is cancelled only with its order (409); units that no longer fit the stock are a 409
 * `stock_overflow`. `check` sees the locked purchase before anything changes (a precondition).
 */
export async function cancelPurchase(
  { pool, stockChanges }: Pick<PurchaseDeps, 'pool' | 'stockChanges'>,
  id: number,
  check: (current: PurchaseRow) => void = () => {},
): Promise<PurchaseRow> {
  let moved = 0;
  const row = await withTransaction(pool, async (tx) => {
    const current = await lockPurchase(tx, id);
    if (!current) throw notFound(PURCHASE_NOT_FOUND);
    check(current);
    if (current.pedido_id !== null) throw conflict('La compra pertenece a un pedido', 'purchase_in_order');
    if (current.estado === 'cancelada') return current;
    applied(
      await moveStock(tx, {
        productoId: current.producto_id,
        causa: 'cancellation',
        delta: current.cantidad,
        source: { type: 'purchases', id },
      }),
    );
    moved = 1;
    const [cancelled] = await markCancelled(tx, [id]);
    return cancelled!;
  });
  stockChanges.inc({ causa: 'cancellation' }, moved);
  return row;
}
