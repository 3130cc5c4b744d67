import { AppError } from './errors.js';
import { parsePositiveInt } from './jsonapi.js';

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
