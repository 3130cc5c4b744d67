import type pg from 'pg';

export { type Answer, errorDocumentProblem, JSONAPI } from '../../support/jsonapi.js';

/** The `detail` of every error object of a JSON:API error document. */
export function detailsOf(body: string): string[] {
  try {
    const errors = (JSON.parse(body) as { errors?: { detail?: unknown }[] }).errors ?? [];
    return errors.map((e) => String(e.detail));
  } catch {
    return [];
  }
}

/**
 * One digest per table of every row as text, in the order of that text (tables keyed by more than
 * an `id` included): equal digests before and after mean
 * that nothing was written, updated or deleted. `tables` maps each table to the columns that count
 * (`*` for all): the outbox relay marks `published_at` on its own, which no request writes.
 */
export async function snapshot(
  pool: pg.Pool,
  tables: Record<string, string>,
): Promise<Record<string, string>> {
  const digests: Record<string, string> = {};
  for (const [table, columns] of Object.entries(tables)) {
    const row = columns === '*' ? 't' : `ROW(${columns})`;
    const { rows } = await pool.query<{ digest: string; count: number }>(
      `SELECT md5(coalesce(string_agg(${row}::text, ',' ORDER BY ${row}::text), '')) AS digest, count(*)::int AS count
         FROM ${table} t`,
    );
    digests[table] = `${rows[0]!.count} rows, md5 ${rows[0]!.digest}`;
  }
  return digests;
}

/** The columns of the tables that a request writes (docs/api.md §1: nothing is written by a request that fails). */
export const WRITTEN_BY_REQUESTS = {
  products: { productos: '*' },
  inventory: {
    inventario: '*',
    historial_compras: '*',
    movimientos_inventario: '*',
    pedidos: '*',
    reservas: '*',
    reserva_lineas: '*',
    idempotency_keys: '*',
    outbox: 't.id, t.seq, t.type, t.producto_id, t.data, t.occurred_at',
  },
};
