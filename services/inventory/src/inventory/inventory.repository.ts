import type { Queryable } from '@catalogo/kit/db';

export interface InventoryRow {
  producto_id: number;
  cantidad: number;
  reservado: number;
  updated_at: string;
}

const COLUMNS = 'producto_id, cantidad, reservado, updated_at';

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
 * The version of a product's stock: the id of its latest movement ('0' before any). Every change of
 * `cantidad` or `reservado` writes a movement, so the version changes with every one of them.
 */
export async function stockVersion(db: Queryable, productoId: number): Promise<string> {
  const { rows } = await db.query<{ version: string }>(
    'SELECT coalesce(max(id), 0)::text AS version FROM movimientos_inventario WHERE producto_id = $1',
    [productoId],
  );
  return rows[0]!.version;
}
