import { describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.js';
import {
  assertAcceptable,
  assertRequestMediaType,
  checkResourceIdentity,
  MAX_INT,
  parseIdParam,
  parsePositiveInt,
} from '../src/jsonapi.js';

/** Runs `fn` and returns the AppError it threw (failing if it threw anything else or nothing). */
function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected an AppError, nothing was thrown');
}

describe('assertRequestMediaType (POST/PATCH Content-Type)', () => {
  it.each([
    'application/vnd.api+json',
    'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"',
    'application/vnd.api+json; profile="https://example.com/profiles/x"',
    'application/vnd.api+json;ext="a";profile="b"',
    'application/vnd.api+json; ext=simple',
    'Application/VND.API+JSON',
  ])('accepts %j', (header) => {
    expect(() => assertRequestMediaType(header)).not.toThrow();
  });

  it.each([
    ['a charset parameter', 'application/vnd.api+json; charset=utf-8'],
    ['ext with a charset', 'application/vnd.api+json; ext="x"; charset=utf-8'],
    ['a foreign parameter', 'application/vnd.api+json; version=1'],
    ['application/json', 'application/json'],
    ['application/json with charset', 'application/json; charset=utf-8'],
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['a similar type', 'application/vnd.api+jsonx'],
    ['no type, only the subtype', 'vnd.api+json'],
    ['an empty header', ''],
    ['garbage', ';;;'],
    ['an unterminated quote', 'application/vnd.api+json; ext="x'],
    ['a parameter without value', 'application/vnd.api+json; ext'],
  ])('refuses %s with 415', (_label, header) => {
    const error = thrown(() => assertRequestMediaType(header));
    expect(error.status).toBe(415);
    expect(error.toErrorObjects()).toEqual([
      expect.objectContaining({
        status: '415',
        title: 'Unsupported Media Type',
        source: { header: 'Content-Type' },
        detail: expect.stringContaining('application/vnd.api+json'),
      }),
    ]);
  });

  it('refuses a missing header with 415', () => {
    expect(thrown(() => assertRequestMediaType(undefined)).status).toBe(415);
  });
});

describe('assertAcceptable (Accept)', () => {
  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['*/*', '*/*'],
    ['application/json', 'application/json'],
    ['text/html', 'text/html'],
    ['the bare media type', 'application/vnd.api+json'],
    ['ext', 'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"'],
    ['profile', 'application/vnd.api+json; profile="a b"'],
    ['a quality value only', 'application/vnd.api+json; q=0.5'],
    ['a quality value and ext', 'application/vnd.api+json; ext="x"; q=0.9'],
    ['one bare instance among modified ones', 'application/vnd.api+json; foo=1, application/vnd.api+json'],
    ['one bare instance before a modified one', 'application/vnd.api+json, application/vnd.api+json; v=2'],
    ['a quoted comma inside a parameter', 'application/vnd.api+json; profile="a,b", text/html'],
    ['an unparsable entry beside a good one', ';;;, application/vnd.api+json'],
    ['an unparsable entry alone', '@@@'],
    ['browsers', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ])('accepts %s', (_label, header) => {
    expect(() => assertAcceptable(header)).not.toThrow();
  });

  it.each([
    ['a foreign parameter', 'application/vnd.api+json; foo=bar'],
    ['a charset', 'application/vnd.api+json; charset=utf-8'],
    ['every instance modified', 'application/vnd.api+json; a=1, application/vnd.api+json; b=2'],
    ['ext plus a foreign parameter', 'application/vnd.api+json; ext="x"; version=2'],
    ['a modified instance beside */*', 'application/vnd.api+json; foo=bar, */*'],
    ['a modified instance beside application/json', 'application/json, application/vnd.api+json; v=1'],
    [
      'a quoted comma hiding no second instance',
      'application/vnd.api+json; foo="a, application/vnd.api+json"',
    ],
  ])('refuses %s with 406', (_label, header) => {
    const error = thrown(() => assertAcceptable(header));
    expect(error.status).toBe(406);
    expect(error.toErrorObjects()[0]).toMatchObject({
      status: '406',
      title: 'Not Acceptable',
      source: { header: 'Accept' },
    });
  });
});

describe('parsePositiveInt and parseIdParam', () => {
  it.each([
    ['1', 1],
    ['42', 42],
    ['2147483647', 2147483647],
  ])('%j is %d', (raw, value) => {
    expect(parsePositiveInt(raw)).toBe(value);
    expect(parseIdParam(raw)).toBe(value);
  });

  it.each([
    '0',
    '-1',
    '01',
    '1.5',
    '1.0',
    '1e3',
    '+1',
    ' 1',
    '1 ',
    '0x1',
    '',
    'abc',
    '2147483648',
    '9999999999',
    '99999999999',
    '١',
  ])('%j is not an id', (raw) => {
    expect(parsePositiveInt(raw)).toBeUndefined();
    const error = thrown(() => parseIdParam(raw));
    expect(error.status).toBe(400);
    expect(error.toErrorObjects()).toEqual([
      expect.objectContaining({ status: '400', title: 'Bad Request', source: { parameter: 'id' } }),
    ]);
  });

  it('names the given parameter', () => {
    const error = thrown(() => parseIdParam('0', 'producto_id'));
    expect(error.problems[0]?.source).toEqual({ parameter: 'producto_id' });
    expect(error.problems[0]?.detail).toContain(String(MAX_INT));
  });
});

describe('checkResourceIdentity', () => {
  const create = { type: 'products', mode: 'create' } as const;
  const update = { type: 'products', mode: 'update', id: '7' } as const;

  it('lets a well-formed document through', () => {
    expect(() => checkResourceIdentity({ data: { type: 'products', attributes: {} } }, create)).not.toThrow();
    expect(() => checkResourceIdentity({ data: { type: 'products', id: '7' } }, update)).not.toThrow();
  });

  it('leaves shapes it cannot judge to the schema (400 there, not here)', () => {
    for (const body of [
      null,
      'x',
      3,
      [],
      {},
      { data: null },
      { data: [] },
      { data: 'x' },
      { data: { type: 5 } },
    ]) {
      expect(() => checkResourceIdentity(body, create)).not.toThrow();
      expect(() => checkResourceIdentity(body, update)).not.toThrow();
    }
    // A non-string id on update is a schema error (400), not a mismatch.
    expect(() => checkResourceIdentity({ data: { type: 'products', id: 7 } }, update)).not.toThrow();
  });

  it('a wrong type is 409 at /data/type, on create and update', () => {
    for (const expected of [create, update]) {
      const error = thrown(() => checkResourceIdentity({ data: { type: 'inventories', id: '7' } }, expected));
      expect(error.status).toBe(409);
      expect(error.problems[0]?.source).toEqual({ pointer: '/data/type' });
    }
  });

  it('any id on create is 403 at /data/id', () => {
    for (const id of ['1', 1, null, '']) {
      const error = thrown(() => checkResourceIdentity({ data: { type: 'products', id } }, create));
      expect(error.status).toBe(403);
      expect(error.problems[0]?.source).toEqual({ pointer: '/data/id' });
    }
  });

  it('an id other than the path id on update is 409 at /data/id', () => {
    const error = thrown(() => checkResourceIdentity({ data: { type: 'products', id: '8' } }, update));
    expect(error.status).toBe(409);
    expect(error.problems[0]?.source).toEqual({ pointer: '/data/id' });
  });
});
