import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { describe, expect, it } from 'vitest';
import { jsonHoldsMoreThan, validationProblems } from '../src/validation.js';

const NO_READ_ONLY = new Set<string>();

const error = (
  keyword: string,
  instancePath: string,
  params: Record<string, unknown>,
): FastifySchemaValidationError => ({
  keyword,
  instancePath,
  schemaPath: `#/${keyword}`,
  params,
  message: 'ajv message, never shown',
});

describe('validationProblems — body', () => {
  it('points a missing member at where it should be', () => {
    expect(
      validationProblems(
        [error('required', '/data/attributes', { missingProperty: 'precio' })],
        'body',
        NO_READ_ONLY,
      ),
    ).toEqual([
      { detail: "Falta el miembro obligatorio 'precio'", source: { pointer: '/data/attributes/precio' } },
    ]);
  });

  it('points a missing top-level member at /name', () => {
    expect(
      validationProblems([error('required', '', { missingProperty: 'data' })], 'body', NO_READ_ONLY),
    ).toEqual([{ detail: expect.any(String), source: { pointer: '/data' } }]);
  });

  it('points an unknown member at the member, naming it', () => {
    const [problem] = validationProblems(
      [error('additionalProperties', '/data/attributes', { additionalProperty: 'color' })],
      'body',
      NO_READ_ONLY,
    );
    expect(problem).toEqual({
      detail: expect.stringContaining("'color'"),
      source: { pointer: '/data/attributes/color' },
    });
    expect(problem?.detail).not.toMatch(/solo lectura/);
  });

  it('says "read-only" for a read-only attribute, but only inside attributes', () => {
    const readOnly = new Set(['created_at']);
    const [inAttributes] = validationProblems(
      [error('additionalProperties', '/data/attributes', { additionalProperty: 'created_at' })],
      'body',
      readOnly,
    );
    expect(inAttributes?.detail).toBe("El atributo 'created_at' es de solo lectura");
    const [elsewhere] = validationProblems(
      [error('additionalProperties', '/data', { additionalProperty: 'created_at' })],
      'body',
      readOnly,
    );
    expect(elsewhere?.detail).not.toMatch(/solo lectura/);
  });

  it('escapes "/" and "~" in member names as JSON pointer tokens (RFC 6901)', () => {
    expect(
      validationProblems(
        [error('additionalProperties', '/data/attributes', { additionalProperty: 'a/b~c' })],
        'body',
        NO_READ_ONLY,
      )[0]?.source,
    ).toEqual({ pointer: '/data/attributes/a~1b~0c' });
  });

  it.each([
    ['type', { type: 'string' }, 'Debe ser de tipo texto'],
    ['type', { type: 'string,null' }, 'Debe ser de tipo texto o nulo'],
    ['type', { type: 'integer' }, 'Debe ser de tipo entero'],
    ['const', { allowedValue: 'products' }, "Debe ser 'products'"],
    ['enum', { allowedValues: ['a', 'b'] }, 'Debe ser uno de: a, b'],
    ['minLength', { limit: 1 }, 'No puede estar vacío'],
    ['minLength', { limit: 3 }, 'Debe tener al menos 3 caracteres'],
    ['maxLength', { limit: 255 }, 'Debe tener como máximo 255 caracteres'],
    ['minimum', { limit: 0 }, 'Debe ser mayor o igual que 0'],
    ['exclusiveMinimum', { limit: 0 }, 'Debe ser mayor que 0'],
    ['maximum', { limit: 99999999.99 }, 'Debe ser menor o igual que 99999999.99'],
    ['exclusiveMaximum', { limit: 10 }, 'Debe ser menor que 10'],
    ['multipleOf', { multipleOf: 0.01 }, 'Debe tener como máximo 2 decimales'],
    ['multipleOf', { multipleOf: 5 }, 'Debe ser múltiplo de 5'],
    ['pattern', { pattern: '^[^\\u0000]*$' }, 'No puede contener el carácter NUL'],
    ['pattern', { pattern: '^[1-9][0-9]{0,9}$' }, 'Formato no válido'],
    ['format', { format: 'date-time' }, 'Valor no válido'],
  ])('describes %s %j in Spanish', (keyword, params, detail) => {
    expect(validationProblems([error(keyword, '/data/attributes/x', params)], 'body', NO_READ_ONLY)).toEqual([
      { detail, source: { pointer: '/data/attributes/x' } },
    ]);
  });

  it('keeps one problem per location, the first reported', () => {
    const problems = validationProblems(
      [
        error('type', '/data/attributes/precio', { type: 'number' }),
        error('exclusiveMinimum', '/data/attributes/precio', { limit: 0 }),
        error('maxLength', '/data/attributes/nombre', { limit: 255 }),
      ],
      'body',
      NO_READ_ONLY,
    );
    expect(problems).toEqual([
      { detail: 'Debe ser de tipo número', source: { pointer: '/data/attributes/precio' } },
      { detail: 'Debe tener como máximo 255 caracteres', source: { pointer: '/data/attributes/nombre' } },
    ]);
  });

  it('never shows the validator message', () => {
    const problems = validationProblems([error('whatever', '/x', {})], 'body', NO_READ_ONLY);
    expect(JSON.stringify(problems)).not.toContain('ajv');
  });
});

describe('validationProblems — querystring and params', () => {
  it('names an unknown query parameter', () => {
    expect(
      validationProblems(
        [error('additionalProperties', '', { additionalProperty: 'color' })],
        'querystring',
        NO_READ_ONLY,
      ),
    ).toEqual([{ detail: "Parámetro de consulta no admitido: 'color'", source: { parameter: 'color' } }]);
  });

  it('names a query parameter with brackets unchanged', () => {
    expect(
      validationProblems([error('type', '/page[size]', { type: 'string' })], 'querystring', NO_READ_ONLY),
    ).toEqual([{ detail: 'Debe ser de tipo texto', source: { parameter: 'page[size]' } }]);
  });

  it('decodes an escaped pointer token back into the parameter name', () => {
    expect(
      validationProblems([error('type', '/a~1b~0c', { type: 'string' })], 'querystring', NO_READ_ONLY)[0]
        ?.source,
    ).toEqual({ parameter: 'a/b~c' });
  });

  it('names a missing path parameter', () => {
    expect(
      validationProblems([error('required', '', { missingProperty: 'id' })], 'params', NO_READ_ONLY)[0]
        ?.source,
    ).toEqual({ parameter: 'id' });
  });

  it('uses an empty parameter name when the whole query is wrong', () => {
    expect(
      validationProblems([error('type', '', { type: 'object' })], 'querystring', NO_READ_ONLY)[0]?.source,
    ).toEqual({ parameter: '' });
  });
});

describe('jsonHoldsMoreThan', () => {
  it('counts members and items at every depth, and stops past the limit', () => {
    expect(jsonHoldsMoreThan('{"a":1,"b":[1,2,3],"c":{"d":null}}', 5)).toBe(true);
    expect(jsonHoldsMoreThan('{"a":1,"b":[1,2,3],"c":{"d":null}}', 10)).toBe(false);
    expect(jsonHoldsMoreThan(`[${'0,'.repeat(10_000)}0]`, 1_000)).toBe(true);
  });

  it('does not count what strings hold, escaped quotes and backslashes included', () => {
    const text = JSON.stringify({ a: `,,,{[${'\\",,'.repeat(50)}\\\\`, b: ',"[,{' });
    expect(JSON.parse(text).b).toBe(',"[,{');
    expect(jsonHoldsMoreThan(text, 3)).toBe(false);
    expect(jsonHoldsMoreThan(`${text.slice(0, -1)},"c":1,"d":2}`, 3)).toBe(true);
  });

  it('leaves malformed text to the parser', () => {
    expect(jsonHoldsMoreThan(`{"a":"${','.repeat(50)}`, 3)).toBe(false);
  });
});
