import type { Queryable } from '@catalogo/kit/db';
import type { PricedLine } from '../orders/orders.lines.js';
import type { Estado } from './reservations.schemas.js';

export interface ReservationLineRow {
  producto_id: number;
  cantidad: number;
  precio_unitario: string;
  total: string;
}

export interface ReservationRow {
  id: number;
  total: string;
  estado: Estado;
  expira_at: string;
  created_at: string;
  pedido_id: number | null;
  lineas: ReservationLineRow[];
}

const SELECT_RESERVATIONS = `
  SELECT r.id, r.total::text AS total, r.estado, r.expira_at, r.created_at,
         (SELECT p.id FROM pedidos p WHERE p.reserva_id = r.id) AS pedido_id,
         (SELECT json_agg(json_build_object(
                   'producto_id', l.producto_id, 'cantidad', l.cantidad,
                   'precio_unitario', l.precio_unitario::text, 'total', l.total::text) ORDER BY l.linea)
          FROM reserva_lineas l WHERE l.reserva_id = r.id) AS lineas
  FROM reservas r`;

export type PlacedReservation =
  | { ok: true; id: number }
  | { ok: false; short: { index: number; disponible: number }[] };

/** Records a reservation through `reservar` (migration 1764720000000): every line or none. */
export async function placeReservation(
  db: Queryable,
  lines: PricedLine[],
  total: string,
  expiraEn: number,
): Promise<PlacedReservation> {
  const { rows } = await db.query<{
    linea: number | null;
    disponible: number | null;
    reserva_id: number | null;
  }>(
    `SELECT linea, disponible, reserva_id
     FROM reservar($1::int[], $2::int[], $3::numeric[], $4::numeric[], $5::numeric, $6::int)`,
    [
      lines.map((l) => l.productoId),
      lines.map((l) => l.cantidad),
      lines.map((l) => l.unitario),
      lines.map((l) => l.total),
      total,
      expiraEn,
    ],
  );
  const first = rows[0]!;
  if (first.reserva_id !== null) return { ok: true, id: first.reserva_id };
  return { ok: false, short: rows.map((row) => ({ index: row.linea! - 1, disponible: row.disponible! })) };
}

export async function findReservation(db: Queryable, id: number): Promise<ReservationRow | undefined> {
  const { rows } = await db.query<ReservationRow>(`${SELECT_RESERVATIONS} WHERE r.id = $1`, [id]);
  return rows[0];
}

/** The reservation, its row locked for the rest of the transaction. */
export async function lockReservation(db: Queryable, id: number): Promise<ReservationRow | undefined> {
  const { rows } = await db.query<ReservationRow>(`${SELECT_RESERVATIONS} WHERE r.id = $1 FOR UPDATE OF r`, [
    id,
  ]);
  return rows[0];
}

/**
 * Whether the reservation's `expira_at` has come, by the database's clock now (the clock the sweeper
 * goes by): asked after locking the row, so no wait for the lock can make a late confirmation pass.
 */
export async function isDue(db: Queryable, id: number): Promise<boolean> {
  const { rows } = await db.query<{ due: boolean }>(
    'SELECT expira_at <= clock_timestamp()::timestamp AS due FROM reservas WHERE id = $1',
    [id],
  );
  return rows[0]!.due;
}

/** Newest first by id, keyset: `before` is the id of the last reservation of the previous page. */
export async function listReservations(
  db: Queryable,
  criteria: { estado?: Estado; before?: number; limit: number },
): Promise<ReservationRow[]> {
  const conditions: string[] = [];
  const values: (string | number)[] = [];
  if (criteria.estado !== undefined) {
    values.push(criteria.estado);
    conditions.push(`r.estado = $${values.length}`);
  }
  if (criteria.before !== undefined) {
    values.push(criteria.before);
    conditions.push(`r.id < $${values.length}`);
  }
  values.push(criteria.limit);
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const { rows } = await db.query<ReservationRow>(
    `${SELECT_RESERVATIONS} ${where} ORDER BY r.id DESC LIMIT $${values.length}`,
    values,
  );
  return rows;
}

/** Marks a locked, active reservation confirmed as `pedidoId` and emits `reservation.confirmed`. */
export async function markConfirmed(db: Queryable, id: number, pedidoId: number): Promise<void> {
  await db.query(
    `WITH confirmed AS (UPDATE reservas SET estado = 'confirmada' WHERE id = $1 RETURNING id)
     INSERT INTO outbox (type, producto_id, data)
     SELECT 'reservation.confirmed', NULL, reserva_evento($1) || jsonb_build_object('order_id', $2::text)
     FROM confirmed`,
    [id, pedidoId],
  );
}

/** Gives back what locked, active reservations hold (`devolver_reservas`): a release or an expiry. */
export async function giveBack(db: Queryable, ids: number[], how: 'release' | 'expiry'): Promise<void> {
  await db.query('SELECT devolver_reservas($1::int[], $2, $3)', [
    ids,
    how,
    how === 'release' ? 'cancelada' : 'expirada',
  ]);
}

/**
 * Locks up to `limit` active reservations past their time, oldest due first, with their number of
 * lines (the stock movements their expiry writes). SKIP LOCKED, as `expirar_reservas` does: the
 * sweepers of several instances, and a confirmation or cancellation in progress, never wait for each
 * other and never expire one twice.
 */
export async function lockDue(db: Queryable, limit: number): Promise<{ id: number; lineas: number }[]> {
  const { rows } = await db.query<{ id: number; lineas: number }>(
    `SELECT r.id, (SELECT count(*)::int FROM reserva_lineas l WHERE l.reserva_id = r.id) AS lineas
     FROM reservas r WHERE r.estado = 'activa' AND r.expira_at <= LOCALTIMESTAMP
     ORDER BY r.expira_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED`,
    [limit],
  );
  return rows;
}

export async function countActive(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM reservas WHERE estado = 'activa'",
  );
  return rows[0]!.n;
}
