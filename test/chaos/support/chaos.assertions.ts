import type pg from 'pg';

export const JSONAPI = 'application/vnd.api+json';

/** The standard reason phrases, written out rather than read from node:http, which the code uses. */
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

/**
 * What is wrong with an answer that should be a JSON:API error document (API.md §1), or undefined
 * when it is one: the media type, `errors` as the only member, and per error object a string
 * `status` equal to the HTTP status, the standard `title` and a non-empty `detail`.
 */
export function errorDocumentProblem(answer: Answer): string | undefined {
  if (!TITLES[answer.status] || answer.status < 400) return `status ${answer.status} is not an error status`;
  if (answer.contentType !== JSONAPI) return `content-type ${answer.contentType}`;
  let document: unknown;
  try {
    document = JSON.parse(answer.body);
  } catch {
    return `body is not JSON: ${answer.body.slice(0, 200)}`;
  }
  const errors = (document as { errors?: unknown } | null)?.errors;
  if (Object.keys(document ?? {}).join() !== 'errors' || !Array.isArray(errors) || errors.length === 0) {
    return `not an error document: ${answer.body.slice(0, 200)}`;
  }
  for (const error of errors as Record<string, unknown>[]) {
    if (error.status !== String(answer.status)) return `error status ${String(error.status)}`;
    if (error.title !== TITLES[answer.status]) return `error title ${String(error.title)}`;
    if (typeof error.detail !== 'string' || error.detail.trim() === '') return 'error without detail';
    // A 5xx never exposes stack traces or SQL (API.md §1); a 4xx may echo what the client sent.
    if (answer.status >= 500 && / at \S+ \(|SELECT |INSERT |UPDATE |node_modules/.test(answer.body)) {
      return `leaks internals: ${answer.body.slice(0, 200)}`;
    }
  }
  return undefined;
}

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
 * One digest per table of every row as text, in id order: equal digests before and after mean
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
      `SELECT md5(coalesce(string_agg(${row}::text, ',' ORDER BY t.id), '')) AS digest, count(*)::int AS count
         FROM ${table} t`,
    );
    digests[table] = `${rows[0]!.count} rows, md5 ${rows[0]!.digest}`;
  }
  return digests;
}

/** The columns of the four tables that a request writes (API.md: nothing is written by a request that fails). */
export const WRITTEN_BY_REQUESTS = {
  products: { productos: '*' },
  inventory: {
    inventario: '*',
    historial_compras: '*',
    outbox: 't.id, t.seq, t.type, t.producto_id, t.data, t.occurred_at',
  },
};
