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
 * Turns the schema validator's errors into one JSON:API problem per location, each with
 * `source.pointer` (body) or `source.parameter` (query and path).
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
    seen.add(key);
    problems.push({ detail: describe(error, readOnly, context), ...(source ? { source } : {}) });
  }
  return problems;
}
