import { withTransaction } from '@catalogo/kit/db';
import { conflict, notFound } from '@catalogo/kit/errors';
import type pg from 'pg';
import type { Counter } from 'prom-client';
import { type Caller, priceLines, shortLines } from '../orders/orders.lines.js';
import { findOrder, type OrderRow, placeOrder } from '../orders/orders.repository.js';
import type { LineInputT } from '../orders/orders.schemas.js';
import type { ProductResource, ProductsClient } from '../products-client.js';
import { outcomeOf } from '../purchases/purchases.service.js';
import type { StockChanges } from '../stock/stock.metrics.js';
import { stockOverflow } from '../stock/stock.service.js';
import {
  findReservation,
  giveBack,
  isDue,
  lockReservation,
  markConfirmed,
  placeReservation,
  type ReservationRow,
} from './reservations.repository.js';

export interface ReservationDeps {
  pool: pg.Pool;
  products: ProductsClient;
  /** `reservations_total{outcome}`. */
  outcomes: Counter<'outcome'>;
  stockChanges: StockChanges;
}

export interface ReservationMade {
  reservation: ReservationRow;
  products: ProductResource[];
}

export const RESERVATION_NOT_FOUND = 'Reserva no encontrada';
const expired = () => conflict('Reserva expirada', 'reservation_expired');

/**
 * Makes a reservation: the products are fetched and priced in one request to Products, outside any
 * transaction, as for an order; then every line's units move from `cantidad` to `reservado`, or none
 * do. `settle`, when given, runs in the reservation's transaction (an idempotent response).
 */
export async function createReservation<T>(
  deps: ReservationDeps,
  input: { lineas: LineInputT[]; expiraEn: number },
  caller: Caller,
  settle: (tx: pg.PoolClient, made: ReservationMade) => Promise<T>,
): Promise<T> {
  try {
    const priced = await priceLines(deps.products, input.lineas, caller);
    const result = await withTransaction(deps.pool, async (tx) => {
      const placed = await placeReservation(tx, priced.lines, priced.total, input.expiraEn);
      if (!placed.ok) throw shortLines(placed.short);
      const reservation = (await findReservation(tx, placed.id))!;
      return settle(tx, { reservation, products: priced.products });
    });
    deps.outcomes.inc({ outcome: 'completed' });
    // Committed: one movement per line.
    deps.stockChanges.inc({ causa: 'reservation' }, input.lineas.length);
    return result;
  } catch (err) {
    deps.outcomes.inc({ outcome: outcomeOf(err) });
    throw err;
  }
}

/**
 * Confirms a reservation: the units it holds are sold as an order at the prices it kept, without
 * calling Products (a shop can confirm while Products is down). The reservation row is locked first,
 * so a confirmation racing a cancellation or the expiry sweep is decided by whichever locks it first,
 * and the other finds it no longer active. From `expira_at` on it can no longer be confirmed.
 * Confirming a confirmed reservation changes nothing. `check` sees the locked reservation first.
 */
export async function confirmReservation(
  { pool, stockChanges }: Pick<ReservationDeps, 'pool' | 'stockChanges'>,
  id: number,
  check: (current: ReservationRow) => void = () => {},
): Promise<{ reservation: ReservationRow; order: OrderRow }> {
  let moved = 0;
  const confirmed = await withTransaction<{ reservation: ReservationRow; order: OrderRow }>(
    pool,
    async (tx) => {
      const current = await lockReservation(tx, id);
      if (!current) throw notFound(RESERVATION_NOT_FOUND);
      check(current);
      if (current.estado === 'confirmada') {
        return { reservation: current, order: (await findOrder(tx, current.pedido_id!))! };
      }
      if (current.estado === 'cancelada') throw conflict('Reserva cancelada', 'reservation_cancelled');
      if (current.estado === 'expirada' || (await isDue(tx, id))) throw expired();
      const placed = await placeOrder(
        tx,
        current.lineas.map((line) => ({
          productoId: line.producto_id,
          cantidad: line.cantidad,
          unitario: line.precio_unitario,
          total: line.total,
        })),
        current.total,
        id,
      );
      if (!placed.ok) throw new Error(`reservation ${id}: held units refused by registrar_pedido`);
      await markConfirmed(tx, id, placed.order.id);
      moved = current.lineas.length;
      return {
        reservation: { ...current, estado: 'confirmada', pedido_id: placed.order.id },
        order: placed.order,
      };
    },
  );
  stockChanges.inc({ causa: 'confirmation' }, moved);
  return confirmed;
}

/**
 * Cancels a reservation: the units it holds go back to `cantidad` (ledger `release`). Cancelling a
 * cancelled reservation changes nothing; a confirmed or expired one is a 409.
 */
export async function cancelReservation(
  { pool, stockChanges }: Pick<ReservationDeps, 'pool' | 'stockChanges'>,
  id: number,
  check: (current: ReservationRow) => void = () => {},
): Promise<ReservationRow> {
  let moved = 0;
  const cancelled = await withTransaction<ReservationRow>(pool, async (tx) => {
    const current = await lockReservation(tx, id);
    if (!current) throw notFound(RESERVATION_NOT_FOUND);
    check(current);
    if (current.estado === 'cancelada') return current;
    if (current.estado === 'confirmada') {
      throw conflict('La reserva ya está confirmada', 'reservation_confirmed');
    }
    if (current.estado === 'expirada') throw expired();
    await giveBack(tx, [id], 'release').catch((err: unknown) => {
      // devolver_reservas refuses units that no longer fit a stock with 22003.
      if ((err as { code?: string }).code === '22003') throw stockOverflow();
      throw err;
    });
    moved = current.lineas.length;
    return { ...current, estado: 'cancelada' };
  });
  stockChanges.inc({ causa: 'release' }, moved);
  return cancelled;
}
