import { beforeAll, describe, expect, it } from 'vitest';
import {
  API_KEY,
  createProduct,
  expectError,
  expectNoWrite,
  itAnsweredNoServerError,
  JSONAPI,
  type ProductResource,
  productBody,
  SECOND_KEY,
  send,
  updateBody,
  useProductsApp,
} from './helpers.js';

const ctx = useProductsApp();
let product: ProductResource;

beforeAll(async () => {
  product = await createProduct(ctx.app(), { nombre: 'Negociado', precio: 5 });
});

/** One request of each endpoint, valid in every respect but the one a test changes. */
const endpoints = () =>
  [
    ['POST /api/products', 'POST', '/api/products', productBody({ nombre: 'Nuevo', precio: 1 })],
    ['GET /api/products', 'GET', '/api/products', undefined],
    ['GET /api/products/{id}', 'GET', `/api/products/${product.id}`, undefined],
    [
      'PATCH /api/products/{id}',
      'PATCH',
      `/api/products/${product.id}`,
      updateBody(product.id, { precio: 9 }),
    ],
    ['DELETE /api/products/{id}', 'DELETE', `/api/products/${product.id}`, undefined],
  ] as const;

describe('authentication (401)', () => {
  it.each([0, 1, 2, 3, 4])('endpoint %#: a missing key is 401 and writes nothing', async (index) => {
    const [, method, url, body] = endpoints()[index]!;
    await expectNoWrite(ctx.db(), async () => {
      const res = await send(ctx.app(), method, url, {
        ...(body ? { body } : {}),
        headers: { 'x-api-key': undefined },
      });
      const [error] = expectError(res, 401);
      expect(error?.detail).toBe('API Key inválida o ausente');
    });
  });

  it.each([
    ['a wrong key', 'wrong-key'],
    ['an empty key', ''],
    ['the key with a trailing space', `${API_KEY} `],
    ['the key in upper case', API_KEY.toUpperCase()],
    ['both keys in one header', `${API_KEY},${SECOND_KEY}`],
    ['the development key, not configured here', 'dev-api-key'],
  ])('%s is 401 on every endpoint and writes nothing', async (_label, key) => {
    for (const [, method, url, body] of endpoints()) {
      await expectNoWrite(ctx.db(), async () => {
        const res = await send(ctx.app(), method, url, {
          ...(body ? { body } : {}),
          headers: { 'x-api-key': key },
        });
        expectError(res, 401);
      });
    }
  });

  it('the header sent twice is 401', async () => {
    const res = await send(ctx.app(), 'GET', '/api/products', {
      headers: { 'x-api-key': [API_KEY, API_KEY] },
    });
    expectError(res, 401);
  });

  it('every configured key is accepted', async () => {
    for (const key of [API_KEY, SECOND_KEY]) {
      const res = await send(ctx.app(), 'GET', `/api/products/${product.id}`, {
        headers: { 'x-api-key': key },
      });
      expect(res.statusCode).toBe(200);
    }
  });

  it('is checked before the route, the media type and the body', async () => {
    expectError(await send(ctx.app(), 'GET', '/api/nothing', { headers: { 'x-api-key': undefined } }), 401);
    expectError(
      await send(ctx.app(), 'POST', '/api/products', {
        body: 'not json',
        headers: { 'x-api-key': undefined, 'content-type': 'text/plain' },
      }),
      401,
    );
    expectError(
      await send(ctx.app(), 'GET', '/api/products/abc', { headers: { 'x-api-key': undefined } }),
      401,
    );
  });

  it.each(['/%61pi/products', '/a%70i/products', `/ap%69/products/PRODUCT`])(
    'cannot be bypassed by percent-encoding the /api prefix (%s)',
    async (template) => {
      const url = template.replace('PRODUCT', product.id);
      expectError(await send(ctx.app(), 'GET', url, { headers: { 'x-api-key': undefined } }), 401);
      await expectNoWrite(ctx.db(), async () => {
        const res = await send(ctx.app(), 'POST', '/%61pi/products', {
          body: productBody({ nombre: 'Intruso', precio: 1 }),
          headers: { 'x-api-key': undefined, 'content-type': 'application/json' },
        });
        expectError(res, 401);
      });
    },
  );

  it.each(['/health', '/metrics', '/docs', '/docs/json'])('%s needs no key', async (url) => {
    const res = await ctx.app().inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
  });
});

describe('request media type (415)', () => {
  const refusedTypes: [string, string | undefined][] = [
    ['application/json', 'application/json'],
    ['text/plain', 'text/plain'],
    ['a charset parameter', 'application/vnd.api+json; charset=utf-8'],
    ['ext plus a charset', 'application/vnd.api+json; ext="x"; charset=utf-8'],
    ['a foreign parameter', 'application/vnd.api+json; version=2'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['garbage', ';;;'],
    ['no Content-Type', undefined],
  ];

  it.each(refusedTypes)('POST with %s is 415 and writes nothing', async (_label, type) => {
    await expectNoWrite(ctx.db(), async () => {
      const res = await send(ctx.app(), 'POST', '/api/products', {
        body: productBody({ nombre: 'Tipo', precio: 1 }),
        headers: { 'content-type': type },
      });
      const [error] = expectError(res, 415, { header: 'Content-Type' });
      expect(error?.detail).toContain(JSONAPI);
    });
  });

  it.each(refusedTypes)('PATCH with %s is 415 and writes nothing', async (_label, type) => {
    await expectNoWrite(ctx.db(), async () => {
      const res = await send(ctx.app(), 'PATCH', `/api/products/${product.id}`, {
        body: updateBody(product.id, { nombre: 'Cambiado' }),
        headers: { 'content-type': type },
      });
      expectError(res, 415, { header: 'Content-Type' });
    });
  });

  it('a missing body with no Content-Type is 415 too', async () => {
    const res = await ctx
      .app()
      .inject({ method: 'POST', url: '/api/products', headers: { 'x-api-key': API_KEY } });
    expectError(res, 415);
  });

  it.each([
    ['ext', 'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"'],
    ['profile', 'application/vnd.api+json; profile="https://example.com/p"'],
    ['ext and profile', 'application/vnd.api+json;ext="a";profile="b"'],
    ['upper case', 'APPLICATION/VND.API+JSON'],
  ])('POST with the media type and %s is accepted', async (_label, type) => {
    const res = await send(ctx.app(), 'POST', '/api/products', {
      body: productBody({ nombre: 'Con parámetros', precio: 1 }),
      headers: { 'content-type': type },
    });
    expect(res.statusCode, res.body).toBe(201);
  });

  it('GET does not look at Content-Type', async () => {
    const read = await send(ctx.app(), 'GET', `/api/products/${product.id}`, {
      headers: { 'content-type': 'text/plain' },
    });
    expect(read.statusCode).toBe(200);
  });

  // JSON:API clients send their Content-Type on every request, DELETE included.
  it.each([
    ['the JSON:API media type', JSONAPI, undefined],
    ['the JSON:API media type and Content-Length 0', JSONAPI, '0'],
    ['application/json and Content-Length 0', 'application/json', '0'],
  ])('DELETE without a body but with %s is 204', async (_label, type, length) => {
    const victim = await createProduct(ctx.app(), { nombre: 'Borrable', precio: 1 });
    const removed = await send(ctx.app(), 'DELETE', `/api/products/${victim.id}`, {
      headers: { 'content-type': type, 'content-length': length },
    });
    expect(removed.statusCode, removed.body).toBe(204);
    expectError(await send(ctx.app(), 'GET', `/api/products/${victim.id}`), 404);
  });

  it('POST with the JSON:API media type and an empty body is still 400', async () => {
    await expectNoWrite(ctx.db(), async () => {
      expectError(await send(ctx.app(), 'POST', '/api/products', { body: '' }), 400);
    });
  });
});

describe('Accept (406)', () => {
  it.each([
    ['a foreign parameter', 'application/vnd.api+json; foo=bar'],
    ['a charset', 'application/vnd.api+json; charset=utf-8'],
    ['every instance modified', 'application/vnd.api+json; a=1, application/vnd.api+json; b=2'],
    ['a modified instance beside */*', 'application/vnd.api+json; v=1, */*'],
  ])('%s is 406 on every endpoint, writing nothing', async (_label, accept) => {
    for (const [, method, url, body] of endpoints()) {
      await expectNoWrite(ctx.db(), async () => {
        const res = await send(ctx.app(), method, url, { ...(body ? { body } : {}), headers: { accept } });
        expectError(res, 406, { header: 'Accept' });
      });
    }
  });

  it.each([
    ['no Accept', undefined],
    ['*/*', '*/*'],
    ['application/json', 'application/json'],
    ['the bare media type', JSONAPI],
    ['ext', 'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"'],
    ['one bare instance among modified ones', 'application/vnd.api+json; foo=1, application/vnd.api+json'],
    ['a browser', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ])('%s is fine', async (_label, accept) => {
    const res = await send(ctx.app(), 'GET', `/api/products/${product.id}`, { headers: { accept } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
  });
});

describe('response media type', () => {
  it('every /api answer, success or error, is application/vnd.api+json without parameters', async () => {
    const victim = await createProduct(ctx.app(), { nombre: 'Para borrar', precio: 1 });
    const requests: [string, Parameters<typeof send>[1], string, Parameters<typeof send>[3]][] = [
      ['201', 'POST', '/api/products', { body: productBody({ nombre: 'x', precio: 1 }) }],
      ['200 list', 'GET', '/api/products', {}],
      ['200 read', 'GET', `/api/products/${product.id}`, {}],
      ['200 update', 'PATCH', `/api/products/${product.id}`, { body: updateBody(product.id, {}) }],
      ['400', 'GET', '/api/products?page[size]=0', {}],
      ['400 bad URL', 'GET', '/api/products/%ff', {}],
      ['401', 'GET', '/api/products', { headers: { 'x-api-key': undefined } }],
      ['403', 'POST', '/api/products', { body: { data: { type: 'products', id: '1', attributes: {} } } }],
      ['404', 'GET', '/api/products/2147483647', {}],
      ['404 route', 'GET', '/api/unknown', {}],
      ['405', 'PUT', '/api/products/1', {}],
      ['406', 'GET', '/api/products', { headers: { accept: 'application/vnd.api+json; x=y' } }],
      ['409', 'POST', '/api/products', { body: { data: { type: 'x', attributes: {} } } }],
      ['413', 'POST', '/api/products', { body: 'x'.repeat(1024 * 1024 + 1) }],
      ['415', 'POST', '/api/products', { body: '{}', headers: { 'content-type': 'application/json' } }],
    ];
    for (const [label, method, url, options] of requests) {
      const res = await send(ctx.app(), method, url, options);
      expect(`${label}: ${res.headers['content-type']}`).toBe(`${label}: ${JSONAPI}`);
      expect(res.json(), label).toBeTypeOf('object');
    }
    const deleted = await send(ctx.app(), 'DELETE', `/api/products/${victim.id}`);
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
  });

  it('HEAD answers like GET, without a body', async () => {
    const res = await send(ctx.app(), 'HEAD', '/api/products');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    expect(res.body).toBe('');
  });

  it('an unknown /api route is a JSON:API 404', async () => {
    const [error] = expectError(await send(ctx.app(), 'GET', '/api/productos'), 404);
    expect(error?.detail).toContain('/api/productos');
  });

  it.each([
    ['PUT', `/api/products/1`, 'DELETE, GET, HEAD, PATCH'],
    ['DELETE', '/api/products', 'GET, HEAD, POST'],
    ['PATCH', '/api/products', 'GET, HEAD, POST'],
  ] as const)(
    '%s %s, a method the path does not support, is a 405 with Allow: %s',
    async (method, url, allow) => {
      const res = await send(ctx.app(), method, url);
      expectError(res, 405);
      expect(res.headers.allow).toBe(allow);
    },
  );
});

itAnsweredNoServerError(ctx);
