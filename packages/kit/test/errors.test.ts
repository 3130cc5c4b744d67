import { describe, expect, it } from 'vitest';
import { toAppError } from '../src/app.js';
import { databaseInputProblem, isDatabaseUnavailable } from '../src/db.js';
import {
  AppError,
  badRequest,
  conflict,
  errorDocument,
  notFound,
  serviceUnavailable,
  titleOf,
} from '../src/errors.js';

/** An Error carrying the members node-postgres and Fastify put on theirs. */
const failure = (message: string, members: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), members);

describe('AppError', () => {
  it('becomes one JSON:API error object per problem', () => {
    const error = new AppError(
      400,
      'validation_failed',
      [{ detail: 'uno', source: { pointer: '/data/a' } }, { detail: 'dos' }],
      { meta: { disponible: 3 } },
    );
    expect(error.message).toBe('uno; dos');
    expect(errorDocument(error.toErrorObjects())).toEqual({
      errors: [
        {
          status: '400',
          title: 'Bad Request',
          code: 'validation_failed',
          detail: 'uno',
          source: { pointer: '/data/a' },
          meta: { disponible: 3 },
        },
        {
          status: '400',
          title: 'Bad Request',
          code: 'validation_failed',
          detail: 'dos',
          meta: { disponible: 3 },
        },
      ],
    });
  });

  it("gives a problem its own meta where it has one, the error's otherwise", () => {
    const error = new AppError(
      409,
      'insufficient_stock',
      [
        {
          detail: 'corta',
          source: { pointer: '/data/attributes/lineas/0/cantidad' },
          meta: { disponible: 1 },
        },
        { detail: 'otra' },
      ],
      { meta: { comun: true } },
    );
    expect(error.toErrorObjects().map((e) => e.meta)).toEqual([{ disponible: 1 }, { comun: true }]);
  });

  it('has shorthands for the common statuses', () => {
    expect(badRequest({ detail: 'x' }).status).toBe(400);
    expect(notFound('Producto no encontrado').toErrorObjects()[0]).toMatchObject({
      status: '404',
      title: 'Not Found',
      detail: 'Producto no encontrado',
    });
    const insufficient = conflict('Inventario insuficiente', 'insufficient_stock', { disponible: 0 });
    expect(insufficient.toErrorObjects()[0]).toMatchObject({ status: '409', meta: { disponible: 0 } });
    expect(conflict('x').meta).toBeUndefined();
    const cause = new Error('socket hang up');
    expect(serviceUnavailable('Servicio de productos no disponible', cause)).toMatchObject({
      status: 503,
      cause,
    });
  });

  it.each([
    [413, 'Payload Too Large'],
    [415, 'Unsupported Media Type'],
    [422, 'Unprocessable Entity'],
    [429, 'Too Many Requests'],
    [503, 'Service Unavailable'],
    [599, 'Error'],
  ])('titles %d "%s"', (status, title) => {
    expect(titleOf(status)).toBe(title);
  });
});

describe('toAppError', () => {
  it('passes an AppError through unchanged', () => {
    const original = new AppError(409, 'conflict', { detail: 'x' });
    expect(toAppError(original)).toBe(original);
  });

  it('maps schema validation errors of the body to 400 with pointers, read-only attributes named', () => {
    const error = failure('body/data/attributes must NOT have additional properties', {
      validation: [
        {
          keyword: 'additionalProperties',
          instancePath: '/data/attributes',
          schemaPath: '#',
          params: { additionalProperty: 'updated_at' },
        },
      ],
      validationContext: 'body',
    });
    const appError = toAppError(error, new Set(['updated_at']));
    expect(appError.status).toBe(400);
    expect(appError.problems).toEqual([
      {
        detail: "El atributo 'updated_at' es de solo lectura",
        source: { pointer: '/data/attributes/updated_at' },
      },
    ]);
  });

  it('maps schema validation errors of the query to 400 with parameters', () => {
    const appError = toAppError(
      failure('querystring must NOT have additional properties', {
        validation: [
          {
            keyword: 'additionalProperties',
            instancePath: '',
            schemaPath: '#',
            params: { additionalProperty: 'x' },
          },
        ],
        validationContext: 'querystring',
      }),
    );
    expect(appError.status).toBe(400);
    expect(appError.problems[0]?.source).toEqual({ parameter: 'x' });
  });

  it.each([
    ['connection refused', failure('connect ECONNREFUSED 127.0.0.1:5432', { code: 'ECONNREFUSED' })],
    ['admin shutdown', failure('terminating connection due to administrator command', { code: '57P01' })],
    ['connection failure class 08', failure('connection failure', { code: '08006' })],
    ['too many connections', failure('sorry, too many clients already', { code: '53300' })],
    ['pool timeout', failure('timeout exceeded when trying to connect')],
    ['terminated', failure('Connection terminated unexpectedly')],
    [
      'every address refused',
      new AggregateError(
        [failure('connect ECONNREFUSED ::1:5432', { code: 'ECONNREFUSED' })],
        'connect failed',
      ),
    ],
  ])('maps an unreachable database (%s) to 503 without internals', (_label, error) => {
    const appError = toAppError(error);
    expect(appError.status).toBe(503);
    expect(appError.cause).toBe(error);
    const document = JSON.stringify(appError.toErrorObjects());
    expect(appError.toErrorObjects()).toEqual([
      expect.objectContaining({
        status: '503',
        title: 'Service Unavailable',
        detail: 'Base de datos no disponible',
      }),
    ]);
    expect(document).not.toContain('5432');
    expect(document).not.toContain(error.message);
  });

  it.each([
    ['22021', 'invalid byte sequence for encoding "UTF8": 0x00'],
    ['22P05', 'unsupported Unicode escape sequence'],
    ['22003', 'numeric field overflow'],
  ])('maps PostgreSQL input error %s to 400', (code, message) => {
    const appError = toAppError(failure(message, { code }));
    expect(appError.status).toBe(400);
    expect(JSON.stringify(appError.toErrorObjects())).not.toContain(message);
  });

  it.each([
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 413],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 415],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 400],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 400],
    ['FST_ERR_BAD_URL', 400, 400],
    ['FST_ERR_MAX_PARAM_LENGTH', 414, 400],
  ])('maps Fastify error %s to %d', (code, statusCode, status) => {
    const appError = toAppError(failure(`fastify says ${code}`, { code, statusCode }));
    expect(appError.status).toBe(status);
    expect(appError.problems[0]?.detail).not.toContain('fastify says');
  });

  it('maps a JSON SyntaxError to 400', () => {
    let syntax: unknown;
    try {
      JSON.parse('{');
    } catch (err) {
      syntax = err;
    }
    expect(toAppError(syntax).status).toBe(400);
  });

  it('keeps a listed 4xx status and turns an unlisted one into 400', () => {
    expect(toAppError(failure('nope', { statusCode: 404 })).status).toBe(404);
    expect(toAppError(failure('teapot', { statusCode: 418 })).status).toBe(400);
    expect(toAppError(failure('uri too long', { statusCode: 414 })).status).toBe(400);
  });

  it.each([
    ['a programming error', new TypeError("Cannot read properties of undefined (reading 'id')")],
    [
      'a SQL error',
      failure('relation "productos" does not exist', {
        code: '42P01',
        query: 'SELECT * FROM productos',
        detail: 'secret',
      }),
    ],
    [
      'a unique violation',
      failure('duplicate key value violates unique constraint "x_pkey"', { code: '23505' }),
    ],
    ['a 5xx Fastify error', failure('internal', { statusCode: 500 })],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
    ['null', null],
  ])('maps %s to 500 without exposing anything of it', (_label, error) => {
    const appError = toAppError(error);
    expect(appError.status).toBe(500);
    expect(appError.toErrorObjects()).toEqual([
      {
        status: '500',
        title: 'Internal Server Error',
        code: 'internal_error',
        detail: 'Error interno del servidor',
      },
    ]);
    expect(appError.cause).toBe(error);
  });
});

describe('isDatabaseUnavailable', () => {
  it.each([
    ['ECONNREFUSED', failure('x', { code: 'ECONNREFUSED' })],
    ['ECONNRESET', failure('x', { code: 'ECONNRESET' })],
    ['ETIMEDOUT', failure('x', { code: 'ETIMEDOUT' })],
    ['ENOTFOUND', failure('getaddrinfo ENOTFOUND db', { code: 'ENOTFOUND' })],
    ['57P03 cannot connect now', failure('the database system is starting up', { code: '57P03' })],
    ['08001', failure('x', { code: '08001' })],
    ['Connection terminated', failure('Connection terminated due to connection timeout')],
    ['a client connection error', failure('Client has encountered a connection error and is not queryable')],
    ['an aggregate of refusals', new AggregateError([failure('a'), failure('b', { code: 'ECONNREFUSED' })])],
  ])('is true for %s', (_label, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', failure('duplicate key', { code: '23505' })],
    ['a syntax error', failure('syntax error at or near', { code: '42601' })],
    ['a check violation', failure('violates check constraint', { code: '23514' })],
    ['a plain Error', new Error('boom')],
    ['an aggregate of other errors', new AggregateError([failure('x', { code: '23505' })])],
    ['a non-Error object with the code', { code: 'ECONNREFUSED', message: 'Connection terminated' }],
    ['a string', 'ECONNREFUSED'],
    ['null', null],
    ['a numeric code', failure('x', { code: 8006 })],
  ])('is false for %s', (_label, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('databaseInputProblem', () => {
  it('is undefined for anything that is not a request-caused input error', () => {
    expect(databaseInputProblem(failure('x', { code: '23505' }))).toBeUndefined();
    expect(databaseInputProblem(undefined)).toBeUndefined();
    expect(databaseInputProblem(null)).toBeUndefined();
  });
});
