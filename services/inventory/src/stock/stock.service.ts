import { AppError } from '@catalogo/kit/errors';
import { MAX_INT } from '@catalogo/kit/jsonapi';
import type pg from 'pg';
import { lockStock, moveStock, type StockLevels, type StockResult } from './stock.repository.js';

export const INSUFFICIENT = 'Inventario insuficiente';

const at = (pointer: string | undefined) => (pointer ? { source: { pointer } } : {});

/** 409: the change would leave less than nothing to sell; `meta.disponible` says what there is. */
export const insufficientStock = (disponible: number, pointer?: string) =>
  new AppError(409, 'insufficient_stock', { detail: INSUFFICIENT, ...at(pointer) }, { meta: { disponible } });

/** 409: the change would take the stock past what the column holds (`meta.disponible` when known). */
export const stockOverflow = (disponible?: number, pointer?: string) =>
  new AppError(
    409,
    'stock_overflow',
    { detail: `La cantidad resultante superaría el máximo (${MAX_INT})`, ...at(pointer) },
    disponible === undefined ? {} : { meta: { disponible } },
  );

/** The refusal of a stock change as the error the client gets; the levels when it was applied. */
export function applied(result: StockResult, pointer?: string): StockLevels {
  if (result.ok) return result;
  throw result.refused === 'overflow'
    ? stockOverflow(result.cantidad, pointer)
    : insufficientStock(result.cantidad, pointer);
}

/**
 * Sets an absolute quantity: the row is created if missing and locked, and the movement is the
 * difference from the locked value, so a set racing purchases loses none of them. `reservado` is
 * never touched.
 */
export async function setStock(
  tx: pg.PoolClient,
  productoId: number,
  cantidad: number,
): Promise<StockLevels> {
  const current = await lockStock(tx, productoId);
  return applied(await moveStock(tx, { productoId, causa: 'set', delta: cantidad - current.cantidad }));
}

/** Adds `delta` (negative to remove) atomically; 409 below 0 or above the column's maximum. */
export async function adjustStock(
  tx: pg.PoolClient,
  productoId: number,
  delta: number,
  reason: string | undefined,
): Promise<StockLevels> {
  await lockStock(tx, productoId);
  return applied(await moveStock(tx, { productoId, causa: 'adjustment', delta, reason: reason ?? null }));
}
