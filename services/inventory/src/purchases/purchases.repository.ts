import type { Queryable } from '@catalogo/kit/db';

export interface PurchaseRow {
  id: number;
  producto_id: number;
  cantidad: number;
  precio_unitario: string;
  total: string;
  created_at: string;
  estado: 'completada' | 'cancelada';
  cancelada_at: string | null;
  /** The order the purchase is a line of. */
  pedido_id: number | null;
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

const RECORDED = 'id, producto_id, cantidad, precio_unitario, total, created_at';
const COLUMNS = `${RECORDED}, estado, cancelada_at, pedido_id`;

type OutcomeRow = Partial<PurchaseRow> & { restante: number | null; disponible: number | null };

// A purchase just recorded on its own is complete, uncancelled and no order's line.
const outcomeOf = ({ restante, disponible, ...purchase }: OutcomeRow): PurchaseOutcome =>
  restante === null
    ? { ok: false, disponible: disponible! }
    : {
        ok: true,
        purchase: { ...(purchase as PurchaseRow), estado: 'completada', cancelada_at: null, pedido_id: null },
        restante,
      };

/**
 * The purchase as one statement, hence one round trip, atomic even outside an explicit transaction:
 * `registrar_compra` (migration 1764700000000) takes the units through the stock module's one
 * definition of a change (`mover_stock`: granted only if enough remains, judged again on the row as
 * concurrent buyers left it; its movement and `inventory.updated` event), then writes the history row
 * and `purchase.completed`. Refused, it answers the stock available now, read after the row lock.
 */
export async function recordPurchase(db: Queryable, p: NewPurchase): Promise<PurchaseOutcome> {
  const { rows } = await db.query<OutcomeRow>({
    // Named: each connection parses and plans this statement once, not on every purchase.
    name: 'purchases.record',
    text: `SELECT ${RECORDED}, restante, disponible FROM registrar_compra($1, $2, $3, $4)`,
    values: [p.productoId, p.cantidad, p.unitario, p.total],
  });
  return outcomeOf(rows[0]!);
}

/** A purchase of a batch that met its stock row locked elsewhere: not attempted, nothing written. */
export interface RowLocked {
  ok: false;
  locked: true;
}

/**
/**
 * Several purchases with one round trip and one commit: `registrar_compras` (migrations
 * 1764510000000 and 1764700000000) runs the function of `recordPurchase` for each, in the order
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
  const { rows } = await db.query<OutcomeRow & { bloqueado: boolean }>({
    name: 'purchases.record-many',
    text: `SELECT ${RECORDED}, restante, disponible, bloqueado
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
  return rows.map(({ bloqueado, ...row }) => (bloqueado ? { ok: false, locked: true } : outcomeOf(row)));
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

/** The purchase, its row locked for the rest of the transaction. */
export async function lockPurchase(db: Queryable, id: number): Promise<PurchaseRow | undefined> {
  const { rows } = await db.query<PurchaseRow>(
    `SELECT ${COLUMNS} FROM historial_compras WHERE id = $1 FOR UPDATE`,
    [id],
  );
  return rows[0];
}

/**
 * Marks purchases cancelled and writes a `purchase.cancelled` event for each, in id order. Their
 * units are given back by the caller, through the stock module, in the same transaction.
 */
export async function markCancelled(db: Queryable, ids: number[]): Promise<PurchaseRow[]> {
  const { rows } = await db.query<PurchaseRow>(
    `WITH cancelled AS (
       UPDATE historial_compras SET estado = 'cancelada', cancelada_at = CURRENT_TIMESTAMP
       WHERE id = ANY($1::int[]) AND estado = 'completada'
       RETURNING ${COLUMNS}
     ), events AS (
       INSERT INTO outbox (type, producto_id, data)
       SELECT 'purchase.cancelled', producto_id, jsonb_build_object(
         'purchase_id', id::text, 'producto_id', producto_id, 'cantidad', cantidad,
         'order_id', pedido_id::text)
       FROM (SELECT * FROM cancelled ORDER BY id) c
     )
     SELECT * FROM cancelled ORDER BY id`,
    [ids],
  );
  return rows;
}
