import type { Queryable } from '@catalogo/kit/db';

export interface ProductRow {
  id: number;
  nombre: string;
  precio: string;
  descripcion: string | null;
  created_at: string;
  updated_at: string;
}

export interface NewProduct {
  nombre: string;
  precio: string;
  descripcion: string | null;
}

export type ProductChanges = Partial<NewProduct>;

export type SortField = 'id' | 'nombre' | 'precio' | 'created_at';

export interface ListCriteria {
  nombre?: string;
  ids?: number[];
  sort: { field: SortField; descending: boolean }[];
  limit: number;
  offset: number;
}

const COLUMNS = 'id, nombre, precio, descripcion, created_at, updated_at';

export async function insertProduct(db: Queryable, product: NewProduct): Promise<ProductRow> {
  const { rows } = await db.query<ProductRow>(
    `INSERT INTO productos (nombre, precio, descripcion) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
    [product.nombre, product.precio, product.descripcion],
  );
  return rows[0]!;
}

/**
 * The hottest query of the system (every read, and every purchase through the Inventory service): a
 * named statement, so each connection parses and plans it once, not on every call — half the
 * database's CPU per read. Its column list is explicit, so a later migration cannot change its row type.
 */
export async function findProduct(db: Queryable, id: number): Promise<ProductRow | undefined> {
  const { rows } = await db.query<ProductRow>({
    name: 'products.find',
    text: `SELECT ${COLUMNS} FROM productos WHERE id = $1`,
    values: [id],
  });
  return rows[0];
}

/**
 * The products of `ids` that exist, in no particular order: the misses of a `filter[id]` read (an
 * order's or a batch of purchases' products), a named statement like `findProduct`.
 */
export async function findProducts(db: Queryable, ids: number[]): Promise<ProductRow[]> {
  const { rows } = await db.query<ProductRow>({
    name: 'products.find-many',
    text: `SELECT ${COLUMNS} FROM productos WHERE id = ANY($1::int[])`,
    values: [ids],
  });
  return rows;
}

/** The product, its row locked for the rest of the transaction (a conditional update's check). */
export async function lockProduct(db: Queryable, id: number): Promise<ProductRow | undefined> {
  const { rows } = await db.query<ProductRow>(`SELECT ${COLUMNS} FROM productos WHERE id = $1 FOR UPDATE`, [
    id,
  ]);
  return rows[0];
}

/** Applies only the given changes; `updated_at` always moves forward, even within one millisecond. */
export async function updateProduct(
  db: Queryable,
  id: number,
  changes: ProductChanges,
): Promise<ProductRow | undefined> {
  const assignments: string[] = [];
  const values: unknown[] = [id];
  for (const column of ['nombre', 'precio', 'descripcion'] as const) {
    if (changes[column] !== undefined) {
      values.push(changes[column]);
      assignments.push(`${column} = $${values.length}`);
    }
  }
  assignments.push(`updated_at = GREATEST(CURRENT_TIMESTAMP, updated_at + interval '1 millisecond')`);
  const { rows } = await db.query<ProductRow>(
    `UPDATE productos SET ${assignments.join(', ')} WHERE id = $1 RETURNING ${COLUMNS}`,
    values,
  );
  return rows[0];
}

export async function deleteProduct(db: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM productos WHERE id = $1', [id]);
  return rowCount === 1;
}

/** Escapes LIKE wildcards so a filter matches its text literally. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** A page of the collection and the number of products matching its filters (`meta.total`). */
export interface ProductPage {
  rows: ProductRow[];
  total: number;
}

export async function listProducts(db: Queryable, criteria: ListCriteria): Promise<ProductPage> {
  const conditions: string[] = [];
  const values: unknown[] = [];
  if (criteria.nombre !== undefined) {
    values.push(`%${likeLiteral(criteria.nombre)}%`);
    conditions.push(`nombre ILIKE $${values.length}`);
  }
  if (criteria.ids !== undefined) {
    values.push(criteria.ids);
    conditions.push(`id = ANY($${values.length}::int[])`);
  }
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const order = criteria.sort.map((s) => `${s.field} ${s.descending ? 'DESC' : 'ASC'}`);
  // id last makes the order total, so pages never repeat or skip a row.
  if (!criteria.sort.some((s) => s.field === 'id')) order.push('id ASC');
  const [page, count] = await Promise.all([
    db.query<ProductRow>(
      `SELECT ${COLUMNS} FROM productos ${where} ORDER BY ${order.join(', ')} LIMIT ${criteria.limit} OFFSET ${criteria.offset}`,
      values,
    ),
    db.query<{ total: string }>(`SELECT count(*) AS total FROM productos ${where}`, values),
  ]);
  return { rows: page.rows, total: Number(count.rows[0]!.total) };
}
