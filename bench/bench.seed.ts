import type pg from 'pg';
import { ledgerMismatches } from '../services/inventory/src/stock/stock.repository.js';

export const PRODUCT_COUNT = 1_000;
/** Far more than any scenario sells, even all on one product, so purchases succeed. */
export const INITIAL_STOCK = 10_000_000;

export interface SeededProduct {
  id: number;
  precio: number;
}

export interface Seed {
  products: SeededProduct[];
  /** The newest history row before the bench: later rows of these products are the bench's. */
  historyMark: number;
}

/**
 * Writes the products and their stock straight in SQL (seconds faster than 2 000 API calls, and
 * the scenarios read them through the API anyway). The products are new rows, so a given database
 * that already holds data keeps it and the bench only ever counts its own products. Without the
 * Inventory service (no purchase scenario) its database is not migrated, and gets no stock.
 */
export async function seed(products: pg.Pool, inventory: pg.Pool | undefined): Promise<Seed> {
  const { rows } = await products.query<{ id: number; precio: string }>(
    `INSERT INTO productos (nombre, precio, descripcion)
     SELECT 'Producto de carga ' || g, (g % 500 + 1) + (g % 100) / 100.0,
            'Descripción del producto ' || g || ' para la prueba de carga'
     FROM generate_series(1, $1::int) AS g
     RETURNING id, precio`,
    [PRODUCT_COUNT],
  );
  const seeded = rows.map((row) => ({ id: row.id, precio: Number(row.precio) }));
  // Fresh statistics, so the plans under load are the ones a settled database would use.
  await products.query('ANALYZE productos');
  if (!inventory) return { products: seeded, historyMark: 0 };
  // Through the stock module's one definition of a change, so that the ledger holds after the run.
  const ids = seeded.map((p) => p.id);
  await inventory.query(
    'INSERT INTO inventario (producto_id, cantidad) SELECT unnest($1::int[]), 0 ON CONFLICT DO NOTHING',
    [ids],
  );
  await inventory.query(
    `SELECT m.* FROM (SELECT producto_id, cantidad FROM inventario WHERE producto_id = ANY($1::int[])
                      ORDER BY producto_id) i,
       LATERAL mover_stock(i.producto_id, 'set', $2 - i.cantidad, 0, NULL, NULL, NULL) m`,
    [ids, INITIAL_STOCK],
  );
  await inventory.query('ANALYZE inventario');
  const mark = await inventory.query<{ mark: number }>(
    'SELECT COALESCE(max(id), 0)::int AS mark FROM historial_compras',
  );
  return { products: seeded, historyMark: mark.rows[0]!.mark };
}

export interface LedgerCheck {
  sold: number;
  /** One sentence per broken rule; empty when the books balance. */
  problems: string[];
}

/** For every seeded product: stock + Σ purchased units (since the seed) = initial stock, stock ≥ 0. */
export async function checkLedger(inventory: pg.Pool, seeded: Seed): Promise<LedgerCheck> {
  const { rows } = await inventory.query<{ producto_id: number; cantidad: number; sold: string }>(
    `SELECT i.producto_id, i.cantidad, COALESCE(sum(h.cantidad), 0) AS sold
     FROM inventario i
     LEFT JOIN historial_compras h ON h.producto_id = i.producto_id AND h.id > $2
     WHERE i.producto_id = ANY($1::int[])
     GROUP BY i.producto_id, i.cantidad`,
    [seeded.products.map((p) => p.id), seeded.historyMark],
  );
  let sold = 0;
  const problems: string[] = [];
  for (const row of rows) {
    const units = Number(row.sold);
    sold += units;
    if (row.cantidad < 0) problems.push(`product ${row.producto_id}: stock ${row.cantidad} < 0`);
    if (row.cantidad + units !== INITIAL_STOCK) {
      problems.push(
        `product ${row.producto_id}: stock ${row.cantidad} + sold ${units} ≠ initial ${INITIAL_STOCK}`,
      );
    }
  }
  for (const m of await ledgerMismatches(inventory)) {
    problems.push(`product ${m.producto_id}: stock ${m.cantidad} ≠ Σ ledger delta ${m.suma_delta}`);
  }
  if (rows.length !== seeded.products.length) {
    problems.push(`${seeded.products.length - rows.length} seeded products lost their inventory row`);
  }
  return { sold, problems };
}
