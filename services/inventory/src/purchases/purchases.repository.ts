import type { Queryable } from '@catalogo/kit/db';

export interface PurchaseRow {
  id: number;
  producto_id: number;
  cantidad: number;
  precio_unitario: string;
  total: string;
  created_at: string;
}

export interface NewPurchase {
  productoId: number;
  cantidad: number;
  /** Exact decimal text, e.g. "0.10". */
  unitario: string;
  total: string;
}

export type PurchaseOutcome =
  | { ok: true; purchase: PurchaseRow; restante: number }
  | { ok: false; disponible: number };

const COLUMNS = 'id, producto_id, cantidad, precio_unitario, total, created_at';

/**
 * The purchase as one statement, hence one round trip (two for a refusal) and atomic even outside
 * an explicit transaction: decrement the stock only if enough remains (concurrent buyers queue on the row
 * lock and re-check the condition on the row as it is after the others committed), insert the
 * history row and both events only if the decrement happened. When it did not, the stock is read
 * again for the 409's `meta.disponible`: the statement's own snapshot was taken before it queued
 * on the row lock, so the stock it would report can be what other buyers have since taken (a 409
 * for 5 units claiming 22 available).
 */
export async function recordPurchase(db: Queryable, p: NewPurchase): Promise<PurchaseOutcome> {
  const { rows } = await db.query<Partial<PurchaseRow> & { restante: number | null }>({
    // Named: each connection parses and plans this statement once, not on every purchase (half
    // the database's CPU per purchase). The column lists are explicit, so its row type never changes.
    name: 'purchases.record',
    text: `WITH stock AS (
       UPDATE inventario SET cantidad = cantidad - $2, updated_at = CURRENT_TIMESTAMP
       WHERE producto_id = $1 AND cantidad >= $2
       RETURNING cantidad
     ), compra AS (
       INSERT INTO historial_compras (producto_id, cantidad, precio_unitario, total)
       SELECT $1, $2, $3, $4 FROM stock
       RETURNING ${COLUMNS}
     ), events AS (
       INSERT INTO outbox (type, producto_id, data)
       SELECT 'purchase.completed', $1, jsonb_build_object(
         'purchase_id', compra.id::text, 'producto_id', $1::int, 'cantidad', $2::int,
         'precio_unitario', trim_scale(compra.precio_unitario), 'total', trim_scale(compra.total))
       FROM compra
       UNION ALL
       SELECT 'inventory.updated', $1, jsonb_build_object(
         'producto_id', $1::int, 'cantidad_anterior', stock.cantidad + $2, 'cantidad', stock.cantidad,
         'causa', 'purchase')
       FROM stock
     )
     SELECT compra.*, stock.cantidad AS restante
     FROM (VALUES (1)) AS one LEFT JOIN compra ON true LEFT JOIN stock ON true`,
    values: [p.productoId, p.cantidad, p.unitario, p.total],
  });
  const row = rows[0]!;
  if (row.id === null || row.id === undefined) {
    const now = await db.query<{ cantidad: number }>(
      'SELECT cantidad FROM inventario WHERE producto_id = $1',
      [p.productoId],
    );
    return { ok: false, disponible: now.rows[0]?.cantidad ?? 0 };
  }
  const { restante, ...purchase } = row;
  return { ok: true, purchase: purchase as PurchaseRow, restante: restante! };
}

/** A purchase of a batch that met its stock row locked elsewhere: not attempted, nothing written. */
export interface RowLocked {
  ok: false;
  locked: true;
}

/**
 * Several purchases with one round trip and one commit: `registrar_compras` (migrations
 * 1764500000000 and 1764510000000) runs the statement of `recordPurchase` for each, in the order
 * given, so each is granted or refused on the stock the ones before it of its product left, as if it
 * had run alone. Atomic as a whole: when PostgreSQL refuses it, none of them was recorded; when the
 * connection is lost, whether it committed is unknown.
 *
 * With `waitMs` 0 it never waits for a stock row locked elsewhere: the purchases of such a row come
 * back as `RowLocked`. With `waitMs` > 0 (one product's purchases) it waits that long at most for
 * the row, then PostgreSQL refuses it (55P03).
 */
export async function recordPurchases(
  db: Queryable,
  purchases: NewPurchase[],
  waitMs = 0,
): Promise<(PurchaseOutcome | RowLocked)[]> {
  const { rows } = await db.query<
    Partial<PurchaseRow> & { restante: number | null; disponible: number | null; bloqueado: boolean }
  >({
    name: 'purchases.record-many',
    text: `SELECT ${COLUMNS}, restante, disponible, bloqueado
           FROM registrar_compras($1::int[], $2::int[], $3::numeric[], $4::numeric[], $5::int)`,
    values: [
      purchases.map((p) => p.productoId),
      purchases.map((p) => p.cantidad),
      purchases.map((p) => p.unitario),
      purchases.map((p) => p.total),
      Math.ceil(waitMs),
    ],
  });
  // One row per purchase, in order: anything else would hand a purchase another's outcome.
  if (rows.length !== purchases.length) {
    throw new Error(`registrar_compras answered ${rows.length} rows for ${purchases.length} purchases`);
  }
  return rows.map(({ restante, disponible, bloqueado, ...purchase }) => {
    if (bloqueado) return { ok: false, locked: true };
    return restante === null
      ? { ok: false, disponible: disponible! }
      : { ok: true, purchase: purchase as PurchaseRow, restante };
  });
}

export async function findPurchase(db: Queryable, id: number): Promise<PurchaseRow | undefined> {
  const { rows } = await db.query<PurchaseRow>(`SELECT ${COLUMNS} FROM historial_compras WHERE id = $1`, [
    id,
  ]);
  return rows[0];
}

/** Newest first by id, keyset: `before` is the id of the last purchase of the previous page. */
export async function listPurchases(
  db: Queryable,
  criteria: { productoId?: number; before?: number; limit: number },
): Promise<PurchaseRow[]> {
  const conditions: string[] = [];
  const values: number[] = [];
  if (criteria.productoId !== undefined) {
    values.push(criteria.productoId);
    conditions.push(`producto_id = $${values.length}`);
  }
  if (criteria.before !== undefined) {
    values.push(criteria.before);
    conditions.push(`id < $${values.length}`);
  }
  values.push(criteria.limit);
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const { rows } = await db.query<PurchaseRow>(
    `SELECT ${COLUMNS} FROM historial_compras ${where} ORDER BY id DESC LIMIT $${values.length}`,
    values,
  );
  return rows;
}
