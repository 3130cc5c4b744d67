import type { Queryable } from '@catalogo/kit/db';
import type pg from 'pg';

export interface InventoryRow {
  producto_id: number;
  cantidad: number;
  updated_at: string;
}

export type Causa = 'set' | 'adjustment' | 'purchase';

const COLUMNS = 'producto_id, cantidad, updated_at';

export async function findInventory(db: Queryable, productoId: number): Promise<InventoryRow | undefined> {
  const { rows } = await db.query<InventoryRow>(`SELECT ${COLUMNS} FROM inventario WHERE producto_id = $1`, [
    productoId,
  ]);
  return rows[0];
}

/** Keyset page by producto_id: one extra row tells whether there is a next page. */
export async function listInventory(db: Queryable, after: number, limit: number): Promise<InventoryRow[]> {
  const { rows } = await db.query<InventoryRow>(
    `SELECT ${COLUMNS} FROM inventario WHERE producto_id > $1 ORDER BY producto_id LIMIT $2`,
    [after, limit],
  );
  return rows;
}

/**
 * Creates the stock row if it is missing and locks it for the rest of the transaction, returning
 * the quantity as it is now. The no-op DO UPDATE is what takes the row lock in the same statement.
 */
export async function lockStock(tx: pg.PoolClient, productoId: number): Promise<number> {
  const { rows } = await tx.query<{ cantidad: number }>(
    `INSERT INTO inventario (producto_id, cantidad) VALUES ($1, 0)
     ON CONFLICT (producto_id) DO UPDATE SET cantidad = inventario.cantidad
     RETURNING cantidad`,
    [productoId],
  );
  return rows[0]!.cantidad;
}

/** Writes a new quantity on a locked row and its `inventory.updated` event, in one statement. */
export async function writeStock(
  tx: pg.PoolClient,
  change: { productoId: number; anterior: number; cantidad: number; causa: Causa },
): Promise<InventoryRow> {
  const { rows } = await tx.query<InventoryRow>(
    `WITH updated AS (
       UPDATE inventario SET cantidad = $2, updated_at = CURRENT_TIMESTAMP
       WHERE producto_id = $1
       RETURNING ${COLUMNS}
     ), event AS (
       INSERT INTO outbox (type, producto_id, data)
       SELECT 'inventory.updated', $1, jsonb_build_object(
         'producto_id', $1::int, 'cantidad_anterior', $3::int, 'cantidad', $2::int, 'causa', $4::text)
       FROM updated
     )
     SELECT ${COLUMNS} FROM updated`,
    [change.productoId, change.cantidad, change.anterior, change.causa],
  );
  return rows[0]!;
}
