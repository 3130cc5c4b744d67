import { AppError } from './errors.js';
import { MAX_INT, parsePositiveInt } from './jsonapi.js';

/** Reads an optional integer query parameter within [min, max], or answers 400 naming it. */
export function intParam(
  raw: string | undefined,
  parameter: string,
  min: number,
  max: number,
  fallback: number,
) {
  if (raw === undefined) return fallback;
  const value = parsePositiveInt(raw) ?? (raw === '0' ? 0 : undefined);
  if (value === undefined || value < min || value > max) {
    throw new AppError(400, 'invalid_parameter', {
      detail: `Debe ser un entero entre ${min} y ${max}`,
      source: { parameter },
    });
  }
  return value;
}

/** Parses a comma-separated list of ids (at most `max`), answering 400 naming the parameter. */
export function idListParam(raw: string, parameter: string, max: number): number[] {
  const parts = raw.split(',');
  const ids = parts.map((part) => parsePositiveInt(part.trim()));
  if (parts.length > max || ids.some((id) => id === undefined)) {
    throw new AppError(400, 'invalid_parameter', {
      detail: `Debe ser una lista de hasta ${max} identificadores (enteros positivos) separados por comas`,
      source: { parameter },
    });
  }
  return [...new Set(ids as number[])];
}

/**
 * Builds a link to `path` with the given query parameters, keeping JSON:API's bracketed names
 * readable and percent-encoding only the values.
 */
export function linkTo(path: string, params: Record<string, string | number | undefined>): string {
  const query = Object.entries(params)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${encodeURIComponent(String(value))}`)
    .join('&');
  return query ? `${path}?${query}` : path;
}

/**
 * Keyset pagination (`page[size]`, `page[after]`): no OFFSET, so a deep page costs what the first
 * does. Reads one row more than the page to know whether a next page exists.
 */
export function cursorPage(query: { 'page[size]'?: string; 'page[after]'?: string }) {
  const size = intParam(query['page[size]'], 'page[size]', 1, 100, 20);
  const after =
    query['page[after]'] === undefined
      ? undefined
      : intParam(query['page[after]'], 'page[after]', 1, MAX_INT, 1);
  return { size, after, fetch: size + 1 };
}

/** The page's rows and its links; `cursorOf` gives the key of a row, the next page's `page[after]`. */
export function cursorResult<R>(
  rows: R[],
  page: { size: number; after: number | undefined },
  path: string,
  filters: Record<string, string | undefined>,
  cursorOf: (row: R) => number,
) {
  const data = rows.slice(0, page.size);
  const last = data[data.length - 1];
  const hasNext = rows.length > page.size && last !== undefined;
  return {
    data,
    links: {
      self: linkTo(path, { ...filters, 'page[size]': page.size, 'page[after]': page.after }),
      first: linkTo(path, { ...filters, 'page[size]': page.size }),
      prev: null,
      next: hasNext
        ? linkTo(path, { ...filters, 'page[size]': page.size, 'page[after]': cursorOf(last) })
        : null,
    },
  };
}
