import { AppError, notFound } from '@catalogo/kit/errors';
import type pg from 'pg';
import type { Counter } from 'prom-client';
import { INSUFFICIENT, PRODUCT_NOT_FOUND } from '../inventory/inventory.routes.js';
import { purchaseTotal } from '../money.js';
import type { ProductResource, ProductsClient } from '../products-client.js';
import { type PurchaseRow, recordPurchase } from './purchases.repository.js';

export type PurchaseOutcomeLabel =
  | 'completed'
  | 'insufficient_stock'
  | 'product_not_found'
  | 'products_unavailable'
  | 'total_too_large'
  | 'error';

export interface PurchaseDeps {
  pool: pg.Pool;
  products: ProductsClient;
  outcomes: Counter<'outcome'>;
}

function outcomeOf(err: unknown): PurchaseOutcomeLabel {
  if (!(err instanceof AppError)) return 'error';
  switch (err.code) {
    case 'insufficient_stock':
      return 'insufficient_stock';
    case 'not_found':
      return 'product_not_found';
    case 'service_unavailable':
      return 'products_unavailable';
    case 'total_too_large':
      return 'total_too_large';
    default:
      return 'error';
  }
}

/**
 * The purchase saga: fetch the product from the Products service outside any transaction (no row
 * lock is ever held across an HTTP call), price the purchase exactly, then record it atomically.
 */
export async function purchase(
  deps: PurchaseDeps,
  input: { productoId: number; cantidad: number },
  requestId: string,
): Promise<{ purchase: PurchaseRow; product: ProductResource }> {
  try {
    const product = await deps.products.getProduct(input.productoId, requestId);
    if (!product) throw notFound(PRODUCT_NOT_FOUND);
    const { unitario, total } = purchaseTotal(product.attributes.precio, input.cantidad);
    const outcome = await recordPurchase(deps.pool, { ...input, unitario, total });
    if (!outcome.ok) {
      throw new AppError(
        409,
        'insufficient_stock',
        { detail: INSUFFICIENT },
        { meta: { disponible: outcome.disponible } },
      );
    }
    deps.outcomes.inc({ outcome: 'completed' });
    return { purchase: outcome.purchase, product };
  } catch (err) {
    deps.outcomes.inc({ outcome: outcomeOf(err) });
    throw err;
  }
}
