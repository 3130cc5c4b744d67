import type { Queryable } from '@catalogo/kit/db';

/** Why a stock changed: the ledger's `causa`. */
export type Causa =
  | 'opening'
  | 'set'
  | 'adjustment'
  | 'purchase'
  | 'cancellation'
  | 'reservation'
  | 'confirmation'
  | 'release'
  | 'expiry';

/** What caused a change: a purchase, an order or a reservation (none for sets and adjustments). */
export interface MovementSource {
  type: 'purchases' | 'orders' | 'reservations';
  id: number;
}

export interface StockChange {
  productoId: number;
  causa: Causa;
  /** Signed change of `cantidad`. */
  delta: number;
  /** Signed change of `reservado`. */
  deltaReservado?: number;
  reason?: string | null;
  source?: MovementSource;
}

export interface StockLevels {
  cantidad: number;
  reservado: number;
}

/** Applied, with the levels after it; or refused, with the levels as they are now. */
export type StockResult =
  | ({ ok: true } & StockLevels)
  | ({ ok: false; refused: 'insufficient' | 'overflow' } & StockLevels);

interface MoveRow extends StockLevels {
  resultado: 'ok' | 'insufficient' | 'overflow';
}

const toResult = ({ resultado, cantidad, reservado }: MoveRow): StockResult =>
  resultado === 'ok'
    ? { ok: true, cantidad, reservado }
    : { ok: false, refused: resultado, cantidad, reservado };

/**
 * Changes one product's stock through `mover_stock` (migration 1764700000000), the one definition of
 * a stock change: the conditional update that keeps `cantidad` and `reservado` within 0 – 2147483647,
 * its ledger movement and its `inventory.updated` event, all in the caller's transaction.
 */
export async function moveStock(db: Queryable, change: StockChange): Promise<StockResult> {
  const { rows } = await db.query<MoveRow>({
    name: 'stock.move',
    text: 'SELECT resultado, cantidad, reservado FROM mover_stock($1, $2, $3, $4, $5, $6, $7)',
    values: [
      change.productoId,
      change.causa,
      change.delta,
      change.deltaReservado ?? 0,
      change.reason ?? null,
      change.source?.type ?? null,
      change.source?.id ?? null,
    ],
  });
  return toResult(rows[0]!);
}

/**
 * Several changes in one statement, applied in product-id order (the order every multi-row change
 * locks its rows in, so two of them never deadlock). Results come back in the order given. The caller
 * runs it in a transaction and rolls back if any is refused.
 */
export async function moveStocks(db: Queryable, changes: StockChange[]): Promise<StockResult[]> {
  const order = changes
    .map((_, index) => index)
    .sort((a, b) => changes[a]!.productoId - changes[b]!.productoId);
  const sorted = order.map((index) => changes[index]!);
  const { rows } = await db.query<MoveRow & { n: string }>({
    name: 'stock.move-many',
    text: `SELECT l.n, m.resultado, m.cantidad, m.reservado
           FROM unnest($1::int[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::int[])
                WITH ORDINALITY AS l(producto, causa, delta, delta_reservado, reason, source_type, source_id, n),
                LATERAL mover_stock(l.producto, l.causa, l.delta, l.delta_reservado, l.reason,
                                    l.source_type, l.source_id) AS m
           ORDER BY l.n`,
    values: [
      sorted.map((c) => c.productoId),
      sorted.map((c) => c.causa),
      sorted.map((c) => c.delta),
      sorted.map((c) => c.deltaReservado ?? 0),
      sorted.map((c) => c.reason ?? null),
      sorted.map((c) => c.source?.type ?? null),
      sorted.map((c) => c.source?.id ?? null),
    ],
  });
  if (rows.length !== changes.length)
    throw new Error(`mover_stock answered ${rows.length} of ${changes.length}`);
  const results: StockResult[] = new Array(changes.length);
  rows.forEach((row, position) => {
    results[order[position]!] = toResult(row);
  });
  return results;
}

/**
 * Creates the stock row if it is missing (at 0, which needs no movement) and locks it for the rest of
 * the transaction, returning its levels as they are now. The no-op DO UPDATE takes the row lock.
 */
export async function lockStock(db: Queryable, productoId: number): Promise<StockLevels> {
  const { rows } = await db.query<StockLevels>(
    `INSERT INTO inventario (producto_id, cantidad) VALUES ($1, 0)
     ON CONFLICT (producto_id) DO UPDATE SET cantidad = inventario.cantidad
     RETURNING cantidad, reservado`,
    [productoId],
  );
  return rows[0]!;
}

/**
 * Locks the stock rows of several products in product-id order, so that any two multi-row changes
 * (orders, reservations, their cancellations) take their locks in the same order and cannot deadlock.
 * A product without a row is absent from the answer: it has nothing to sell.
 */
export async function lockStocks(db: Queryable, productoIds: number[]): Promise<Map<number, StockLevels>> {
  const { rows } = await db.query<StockLevels & { producto_id: number }>(
    `SELECT producto_id, cantidad, reservado FROM inventario
     WHERE producto_id = ANY($1::int[]) ORDER BY producto_id FOR UPDATE`,
    [productoIds],
  );
  return new Map(rows.map(({ producto_id, ...levels }) => [producto_id, levels]));
}

export interface MovementRow {
  id: string;
  producto_id: number;
  causa: Causa;
  delta: number;
  delta_reservado: number;
  cantidad: number;
  reservado: number;
  reason: string | null;
  source_type: MovementSource['type'] | null;
  source_id: number | null;
  created_at: string;
}

/** A product's movements newest first, keyset: `before` is the id of the last one of the previous page. */
export async function listMovements(
  db: Queryable,
  criteria: { productoId: number; before?: number; limit: number },
): Promise<MovementRow[]> {
  // Two statements, not `$2 IS NULL OR id < $2`: each is a plain range scan of the index, as fast
  // deep in the ledger as on its first page. Ordered by the bigint column, not by its text ('9' > '10').
  const after = criteria.before === undefined ? '' : 'AND m.id < $3';
  const { rows } = await db.query<MovementRow>(
    `SELECT m.id::text AS id, producto_id, causa, delta, delta_reservado, cantidad, reservado, reason,
            source_type, source_id, created_at
     FROM movimientos_inventario m
     WHERE producto_id = $1 ${after}
     ORDER BY m.id DESC LIMIT $2`,
    criteria.before === undefined
      ? [criteria.productoId, criteria.limit]
      : [criteria.productoId, criteria.limit, criteria.before],
  );
  return rows;
}

export interface LedgerMismatch {
  producto_id: number;
  cantidad: number;
  reservado: number;
  suma_delta: number;
  suma_delta_reservado: number;
}

/**
 * The products whose stock disagrees with their ledger: Σ delta ≠ cantidad or Σ delta_reservado ≠
 * reservado (a product with movements but no stock row counts as stock 0). Empty when the books hold.
 */
export async function ledgerMismatches(db: Queryable): Promise<LedgerMismatch[]> {
  const { rows } = await db.query<LedgerMismatch>(
    `WITH sumas AS (
       SELECT producto_id, sum(delta)::bigint AS suma_delta, sum(delta_reservado)::bigint AS suma_delta_reservado
       FROM movimientos_inventario GROUP BY producto_id
     )
     SELECT coalesce(i.producto_id, s.producto_id) AS producto_id,
            coalesce(i.cantidad, 0) AS cantidad, coalesce(i.reservado, 0) AS reservado,
            coalesce(s.suma_delta, 0)::int AS suma_delta,
            coalesce(s.suma_delta_reservado, 0)::int AS suma_delta_reservado
     FROM inventario i FULL JOIN sumas s ON s.producto_id = i.producto_id
     WHERE coalesce(i.cantidad, 0) <> coalesce(s.suma_delta, 0)
        OR coalesce(i.reservado, 0) <> coalesce(s.suma_delta_reservado, 0)
     ORDER BY 1`,
  );
  return rows;
}
