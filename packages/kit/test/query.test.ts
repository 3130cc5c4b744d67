import { describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.js';
import { cursorPage, cursorResult, idListParam, intParam, linkTo } from '../src/query.js';

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected a 400');
}

describe('intParam', () => {
  it('returns the fallback when the parameter is absent', () => {
    expect(intParam(undefined, 'page[size]', 1, 100, 20)).toBe(20);
  });

  it.each([
    ['1', 1],
    ['100', 100],
    ['57', 57],
  ])('reads %j within [1, 100]', (raw, value) => {
    expect(intParam(raw, 'page[size]', 1, 100, 20)).toBe(value);
  });

  it('accepts 0 when the minimum allows it', () => {
    expect(intParam('0', 'offset', 0, 10, 5)).toBe(0);
  });

  it.each(['0', '101', '-1', 'abc', '1.5', '01', '', ' 5', '1e2', '2147483648'])(
    'refuses %j with 400 naming the parameter',
    (raw) => {
      const error = refusal(() => intParam(raw, 'page[size]', 1, 100, 20));
      expect(error.status).toBe(400);
      expect(error.problems).toEqual([
        { detail: expect.stringContaining('entre 1 y 100'), source: { parameter: 'page[size]' } },
      ]);
    },
  );
});

describe('idListParam', () => {
  it('parses a comma-separated list, trimming spaces and dropping repeats', () => {
    expect(idListParam('3,1,2', 'filter[id]', 100)).toEqual([3, 1, 2]);
    expect(idListParam(' 4 , 5 ', 'filter[id]', 100)).toEqual([4, 5]);
    expect(idListParam('7,7,7', 'filter[id]', 100)).toEqual([7]);
    expect(idListParam('2147483647', 'filter[id]', 100)).toEqual([2147483647]);
  });

  it('accepts exactly `max` ids and refuses one more', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(idListParam(hundred.join(','), 'filter[id]', 100)).toEqual(hundred);
    const error = refusal(() => idListParam([...hundred, 101].join(','), 'filter[id]', 100));
    expect(error.status).toBe(400);
    expect(error.problems[0]?.source).toEqual({ parameter: 'filter[id]' });
  });

  it('counts repeated ids towards the limit (the request, not the result, is bounded)', () => {
    expect(() => idListParam(Array.from({ length: 101 }, () => '1').join(','), 'filter[id]', 100)).toThrow(
      AppError,
    );
  });

  it.each(['', ',', '1,', ',1', '1,,2', '1,abc', '0', '-1', '1.5', '01', '2147483648'])(
    'refuses %j with 400 naming the parameter',
    (raw) => {
      const error = refusal(() => idListParam(raw, 'filter[producto_id]', 100));
      expect(error.status).toBe(400);
      expect(error.problems[0]?.source).toEqual({ parameter: 'filter[producto_id]' });
    },
  );
});

describe('linkTo', () => {
  it('is the bare path without parameters', () => {
    expect(linkTo('/api/products', {})).toBe('/api/products');
    expect(linkTo('/api/products', { sort: undefined })).toBe('/api/products');
  });

  it('keeps bracketed names readable, leaves out undefined values and keeps the given order', () => {
    expect(
      linkTo('/api/products', {
        'filter[id]': undefined,
        sort: '-precio',
        'page[number]': 2,
        'page[size]': 20,
      }),
    ).toBe('/api/products?sort=-precio&page[number]=2&page[size]=20');
  });

  it('percent-encodes values so that they survive a round trip', () => {
    const nombre = 'a&b=c 100%#?+,ñ';
    const link = linkTo('/api/products', { 'filter[nombre]': nombre, 'page[number]': 1 });
    expect(link).toBe(`/api/products?filter[nombre]=${encodeURIComponent(nombre)}&page[number]=1`);
    const parsed = new URL(link, 'http://localhost');
    expect(parsed.searchParams.get('filter[nombre]')).toBe(nombre);
    expect(parsed.searchParams.get('page[number]')).toBe('1');
  });

  it('writes 0 rather than dropping it', () => {
    expect(linkTo('/p', { n: 0 })).toBe('/p?n=0');
  });
});

describe('cursorPage', () => {
  it('defaults to 20 rows from the start, fetching one more to detect a next page', () => {
    expect(cursorPage({})).toEqual({ size: 20, after: undefined, fetch: 21 });
  });

  it('reads page[size] and page[after]', () => {
    expect(cursorPage({ 'page[size]': '5', 'page[after]': '2147483647' })).toEqual({
      size: 5,
      after: 2147483647,
      fetch: 6,
    });
  });

  it.each([
    [{ 'page[size]': '0' }, 'page[size]'],
    [{ 'page[size]': '101' }, 'page[size]'],
    [{ 'page[after]': '0' }, 'page[after]'],
    [{ 'page[after]': 'abc' }, 'page[after]'],
    [{ 'page[after]': '2147483648' }, 'page[after]'],
  ])('refuses %j naming %s', (query, parameter) => {
    const error = refusal(() => cursorPage(query));
    expect(error.status).toBe(400);
    expect(error.problems[0]?.source).toEqual({ parameter });
  });
});

describe('cursorResult', () => {
  const key = (row: { id: number }) => row.id;
  const rows = (...ids: number[]) => ids.map((id) => ({ id }));

  it('with one row more than the page, cuts it off and links the next page after the last row shown', () => {
    const result = cursorResult(
      rows(9, 8, 7),
      { size: 2, after: undefined },
      '/api/x',
      { 'filter[a]': '1' },
      key,
    );
    expect(result.data).toEqual(rows(9, 8));
    expect(result.links).toEqual({
      self: '/api/x?filter[a]=1&page[size]=2',
      first: '/api/x?filter[a]=1&page[size]=2',
      prev: null,
      next: '/api/x?filter[a]=1&page[size]=2&page[after]=8',
    });
  });

  it('without the extra row, has no next page', () => {
    const result = cursorResult(rows(5, 4), { size: 2, after: 6 }, '/api/x', { 'filter[a]': undefined }, key);
    expect(result.data).toEqual(rows(5, 4));
    expect(result.links.self).toBe('/api/x?page[size]=2&page[after]=6');
    expect(result.links.next).toBeNull();
  });

  it('an empty page has no next page', () => {
    expect(cursorResult([], { size: 2, after: 1 }, '/api/x', {}, key)).toMatchObject({
      data: [],
      links: { next: null },
    });
  });
});
