import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import type { Problem } from './errors.js';

const TYPE_NAMES: Record<string, string> = {
  string: 'texto',
  number: 'número',
  integer: 'entero',
  object: 'objeto',
  array: 'lista',
  boolean: 'booleano',
  null: 'nulo',
};

const typeName = (type: unknown) =>
  String(type)
    .split(',')
    .map((t) => TYPE_NAMES[t] ?? t)
    .join(' o ');

const NUL_PATTERN = '^[^\\u0000]*$';

type Context = 'body' | 'querystring' | 'params' | 'headers' | string;

/** Decodes one JSON pointer token (RFC 6901). */
const unescapeToken = (token: string) => token.replace(/~1/g, '/').replace(/~0/g, '~');
const escapeToken = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

function describe(
  error: FastifySchemaValidationError,
  readOnly: ReadonlySet<string>,
  context: Context,
): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `Falta el miembro obligatorio '${String(params.missingProperty)}'`;
    case 'additionalProperties': {
      const name = String(params.additionalProperty);
      if (context === 'querystring') return `Parámetro de consulta no admitido: '${name}'`;
      if (readOnly.has(name) && error.instancePath.endsWith('/attributes')) {
        return `El atributo '${name}' es de solo lectura`;
      }
      return `El miembro '${name}' no está permitido`;
    }
    case 'type':
      return `Debe ser de tipo ${typeName(params.type)}`;
    case 'const':
      return `Debe ser '${String(params.allowedValue)}'`;
    case 'enum':
      return `Debe ser uno de: ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'minLength':
      return params.limit === 1
        ? 'No puede estar vacío'
        : `Debe tener al menos ${String(params.limit)} caracteres`;
    case 'maxLength':
      return `Debe tener como máximo ${String(params.limit)} caracteres`;
    case 'minimum':
      return `Debe ser mayor o igual que ${String(params.limit)}`;
    case 'exclusiveMinimum':
      return `Debe ser mayor que ${String(params.limit)}`;
    case 'maximum':
      return `Debe ser menor o igual que ${String(params.limit)}`;
    case 'exclusiveMaximum':
      return `Debe ser menor que ${String(params.limit)}`;
    case 'multipleOf':
      return params.multipleOf === 0.01
        ? 'Debe tener como máximo 2 decimales'
        : `Debe ser múltiplo de ${String(params.multipleOf)}`;
    case 'pattern':
      return params.pattern === NUL_PATTERN ? 'No puede contener el carácter NUL' : 'Formato no válido';
    default:
      return 'Valor no válido';
  }
}

function locate(error: FastifySchemaValidationError, context: Context): Problem['source'] {
  const params = error.params as Record<string, unknown>;
  const member =
    error.keyword === 'required'
      ? String(params.missingProperty)
      : error.keyword === 'additionalProperties'
        ? String(params.additionalProperty)
        : undefined;
  if (context === 'body') {
    return {
      pointer: member === undefined ? error.instancePath : `${error.instancePath}/${escapeToken(member)}`,
    };
  }
  const first = error.instancePath.split('/')[1];
  return { parameter: member ?? (first === undefined ? '' : unescapeToken(first)) };
}

/**
 * The most error objects a response carries. A body of 1 MiB can hold 90 000 unknown members, one
 * problem each: listing them all made a 14 MB answer and seconds of CPU out of one request.
 */
export const MAX_ERRORS = 20;

/**
 * Turns the schema validator's errors into one JSON:API problem per location, each with
 * `source.pointer` (body) or `source.parameter` (query and path): the first MAX_ERRORS − 1, then
 * one saying more were left out, when there are more than MAX_ERRORS.
 */
export function validationProblems(
  errors: FastifySchemaValidationError[],
  context: Context,
  readOnly: ReadonlySet<string>,
): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const error of errors) {
    const source = locate(error, context);
    const key = JSON.stringify(source);
    if (seen.has(key)) continue;
    if (problems.length === MAX_ERRORS) {
      problems.length = MAX_ERRORS - 1;
      problems.push({
        detail: `La petición tiene más problemas: se muestran los ${MAX_ERRORS - 1} primeros`,
      });
      break;
    }
    seen.add(key);
    problems.push({ detail: describe(error, readOnly, context), ...(source ? { source } : {}) });
  }
  return problems;
}

/** The most members and items, at every depth, that a request body may hold. */
export const MAX_BODY_VALUES = 1_000;

/**
 * Whether the JSON text holds more than `limit` values: it counts the commas and opening brackets
 * outside strings (at least one per member or item), and stops past the limit. It reads the text
 * before it is parsed, as parsing an object of 90 000 members costs as much as validating it.
 */
export function jsonHoldsMoreThan(text: string, limit: number): boolean {
  if (text.length <= limit) return false;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (char === QUOTE) {
      // A string ends at the next quote that no backslash escapes; indexOf skips it at native speed.
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && escaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) return false;
      i = end;
    } else if ((char === COMMA || char === OPEN_BRACKET || char === OPEN_BRACE) && ++count > limit) {
      return true;
    }
  }
  return false;
}

/** Whether the character at `index` follows an odd number of backslashes. */
function escaped(text: string, index: number): boolean {
  let backslashes = 0;
  while (text.charCodeAt(index - 1 - backslashes) === BACKSLASH) backslashes++;
  return backslashes % 2 === 1;
}

const [BACKSLASH, QUOTE, COMMA, OPEN_BRACKET, OPEN_BRACE] = ['\\', '"', ',', '[', '{'].map((c) =>
  c.charCodeAt(0),
);
