import type pg from 'pg';

export interface ProductLedger {
  productoId: number;
  initial: number;
  stock: number;
  /** Σ historial_compras.cantidad of the product. */
  sold: number;
  purchases: number;
  /** `inventory.updated` outbox rows caused by a purchase. */
  purchaseUpdates: number;
}

/**
 * Per product, what the database holds after the experiment. The invariants: stock + sold =
 * initial (nothing sold that was not taken from stock, nothing taken that was not sold) and one
 * `inventory.updated` event per purchase.
 */
export async function ledger(pool: pg.Pool, initial: Map<number, number>): Promise<ProductLedger[]> {
  const { rows } = await pool.query<{
    producto_id: number;
    stock: number;
    sold: number;
    purchases: number;
    updates: number;
  }>(
    `SELECT i.producto_id, i.cantidad AS stock,
            (SELECT coalesce(sum(h.cantidad), 0)::int FROM historial_compras h WHERE h.producto_id = i.producto_id) AS sold,
            (SELECT count(*)::int FROM historial_compras h WHERE h.producto_id = i.producto_id) AS purchases,
            (SELECT count(*)::int FROM outbox o
              WHERE o.type = 'inventory.updated' AND o.producto_id = i.producto_id
                AND o.data->>'causa' = 'purchase') AS updates
       FROM inventario i WHERE i.producto_id = ANY($1::int[]) ORDER BY i.producto_id`,
    [[...initial.keys()]],
  );
  return rows.map((row) => ({
    productoId: row.producto_id,
    initial: initial.get(row.producto_id)!,
    stock: row.stock,
    sold: row.sold,
    purchases: row.purchases,
    purchaseUpdates: row.updates,
  }));
}

/** Products whose ledger breaks an invariant, described; empty when every sum holds. */
export function brokenLedgers(ledgers: ProductLedger[]): string[] {
  return ledgers
    .filter((l) => l.stock + l.sold !== l.initial || l.stock < 0 || l.purchaseUpdates !== l.purchases)
    .map((l) => JSON.stringify(l));
}

/**
 * History rows without their `purchase.completed` event (same purchase id, product and quantity)
 * and events without their history row: either would be a purchase half written.
 */
export async function unpairedPurchases(
  pool: pg.Pool,
): Promise<{ historyWithoutEvent: number; eventWithoutHistory: number; events: number }> {
  const { rows } = await pool.query<{
    history_without_event: number;
    event_without_history: number;
    events: number;
  }>(
    `SELECT
       (SELECT count(*)::int FROM historial_compras h WHERE NOT EXISTS (
          SELECT 1 FROM outbox o WHERE o.type = 'purchase.completed' AND o.data->>'purchase_id' = h.id::text
             AND (o.data->>'producto_id')::int = h.producto_id AND (o.data->>'cantidad')::int = h.cantidad
       )) AS history_without_event,
       (SELECT count(*)::int FROM outbox o WHERE o.type = 'purchase.completed' AND NOT EXISTS (
          SELECT 1 FROM historial_compras h WHERE h.id::text = o.data->>'purchase_id'
       )) AS event_without_history,
       (SELECT count(*)::int FROM outbox o WHERE o.type = 'purchase.completed') AS events`,
  );
  const row = rows[0]!;
  return {
    historyWithoutEvent: row.history_without_event,
    eventWithoutHistory: row.event_without_history,
    events: row.events,
  };
}

/** The ids of every purchase in the history. */
export async function historyIds(pool: pg.Pool): Promise<Set<number>> {
  const { rows } = await pool.query<{ id: number }>('SELECT id FROM historial_compras');
  return new Set(rows.map((r) => r.id));
}
