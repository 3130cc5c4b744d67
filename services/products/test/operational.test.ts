import net from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import {
  API_KEY,
  createProduct,
  expectError,
  itAnsweredNoServerError,
  type ProductsApp,
  productBody,
  send,
  useProductsApp,
} from './helpers.js';

const ctx = useProductsApp();

/** The samples of one metric in Prometheus text, with their labels parsed. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`))
    .map((line) => {
      const [, labelText = '', value = ''] = /^[^{]+\{(.*)\} (\S+)$/.exec(line) ?? [];
      const labels = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      return { labels, value: Number(value) };
    });
}

describe('GET /health', () => {
  it('is 200 {"status":"ok","checks":{"database":"ok"}} as application/json, without a key', async () => {
    const res = await ctx.app().inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json(;|$)/);
    expect(res.json()).toEqual({ status: 'ok', checks: { database: 'ok' } });
  });
});

describe('GET /metrics', () => {
  it('exposes request counts and latency histograms by route template and status', async () => {
    const product = await createProduct(ctx.app(), { nombre: 'Métrica', precio: 1 });
    await send(ctx.app(), 'GET', `/api/products/${product.id}`);
    await send(ctx.app(), 'GET', '/api/products/2147483647');
    await send(ctx.app(), 'GET', '/api/products', { headers: { 'x-api-key': 'wrong' } });

    const res = await ctx.app().inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('# TYPE http_requests_total counter');
    expect(res.body).toContain('# TYPE http_request_duration_seconds histogram');

    const counts = samples(res.body, 'http_requests_total');
    const count = (method: string, route: string, status: string) =>
      counts.find((s) => s.labels.method === method && s.labels.route === route && s.labels.status === status)
        ?.value ?? 0;
    expect(count('POST', '/api/products', '201')).toBeGreaterThanOrEqual(1);
    expect(count('GET', '/api/products/:id', '200')).toBeGreaterThanOrEqual(1);
    expect(count('GET', '/api/products/:id', '404')).toBeGreaterThanOrEqual(1);
    expect(count('GET', '/api/products', '401')).toBeGreaterThanOrEqual(1);
    expect(counts.every((s) => s.labels.service === 'products')).toBe(true);

    const buckets = samples(res.body, 'http_request_duration_seconds_bucket').filter(
      (s) => s.labels.route === '/api/products/:id' && s.labels.status === '200' && s.labels.method === 'GET',
    );
    expect(buckets.length).toBeGreaterThan(1);
    expect(buckets.find((b) => b.labels.le === '+Inf')?.value).toBeGreaterThanOrEqual(1);
    // Ids are never labels: the route template is.
    expect(res.body).not.toContain(`/api/products/${product.id}"`);
  });
});

describe('GET /docs and /docs/json', () => {
  it('/docs serves the interactive documentation', async () => {
    const res = await ctx.app().inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
  });

  it('/docs/json is an OpenAPI document of every products endpoint, built from the validating schemas', async () => {
    const res = await ctx.app().inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBeTypeOf('string');
    expect(Object.keys(doc.paths['/api/products']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/products/{id}']).sort()).toEqual(['delete', 'get', 'patch']);
    expect(doc.paths['/health']).toBeUndefined();
    expect(doc.components.securitySchemes.apiKey).toEqual({
      type: 'apiKey',
      in: 'header',
      name: 'X-API-Key',
    });

    const post = doc.paths['/api/products'].post;
    expect(post.security).toEqual([{ apiKey: [] }]);
    const attributes =
      post.requestBody.content['application/vnd.api+json'].schema.properties.data.properties.attributes;
    expect(attributes.required.sort()).toEqual(['nombre', 'precio']);
    expect(attributes.properties.precio).toMatchObject({ exclusiveMinimum: 0, maximum: 99999999.99 });
    expect(attributes.properties.nombre).toMatchObject({ minLength: 1, maxLength: 255 });
    expect(attributes.properties.descripcion).toMatchObject({ maxLength: 5000 });
    expect(Object.keys(post.responses)).toEqual(
      expect.arrayContaining(['201', '400', '401', '403', '409', '413', '415']),
    );
    expect(Object.keys(doc.paths['/api/products/{id}'].get.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '404']),
    );
  });
});

describe('x-request-id', () => {
  it('echoes a client-supplied id on /api, errors included, and on /health', async () => {
    const ok = await send(ctx.app(), 'GET', '/api/products', { headers: { 'x-request-id': 'trace-123' } });
    expect(ok.headers['x-request-id']).toBe('trace-123');
    const error = await send(ctx.app(), 'GET', '/api/products/0', {
      headers: { 'x-request-id': 'trace-456' },
    });
    expect(error.statusCode).toBe(400);
    expect(error.headers['x-request-id']).toBe('trace-456');
    const health = await ctx.app().inject({ url: '/health', headers: { 'x-request-id': 'trace-789' } });
    expect(health.headers['x-request-id']).toBe('trace-789');
  });

  it('generates a fresh id when none, or an unusable one, is given', async () => {
    const a = await send(ctx.app(), 'GET', '/api/products');
    const b = await send(ctx.app(), 'GET', '/api/products', {
      headers: { 'x-request-id': 'no spaces allowed' },
    });
    for (const res of [a, b]) expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});

/** A Products app whose database is `url`; no test database behind it. */
async function appWithDatabase(url: string): Promise<ProductsApp> {
  const config = loadConfig({
    DATABASE_URL: url,
    API_KEYS: API_KEY,
    LOG_LEVEL: 'silent',
    METRICS_CACHE_MS: '0',
  });
  return buildApp(config, pino({ level: 'silent' }));
}

/** A port on which nothing listens (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Expects a JSON:API 503 that says nothing about the database's address or the driver's error. */
function expectDatabaseUnavailable(res: Awaited<ReturnType<typeof send>>, port: number) {
  const [error] = expectError(res, 503);
  expect(error?.detail).toBe('Base de datos no disponible');
  expect(res.body).not.toMatch(new RegExp(`${port}|127\\.0\\.0\\.1|ECONN|timeout|stack|\\.ts`, 'i'));
}

describe('database refusing connections', () => {
  let app: ProductsApp;
  let port: number;
  beforeAll(async () => {
    port = await closedPort();
    app = await appWithDatabase(`postgres://postgres@127.0.0.1:${port}/products`);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('/health is 503 with the failing check', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ status: 'error', checks: { database: 'error' } });
  });

  it('every /api endpoint is a JSON:API 503 without internals', async () => {
    const requests: [Parameters<typeof send>[1], string, unknown][] = [
      ['GET', '/api/products', undefined],
      ['GET', '/api/products/1', undefined],
      ['POST', '/api/products', productBody({ nombre: 'x', precio: 1 })],
      ['PATCH', '/api/products/1', { data: { type: 'products', id: '1', attributes: { precio: 2 } } }],
      ['DELETE', '/api/products/1', undefined],
    ];
    for (const [method, url, body] of requests) {
      expectDatabaseUnavailable(await send(app, method, url, body === undefined ? {} : { body }), port);
    }
  });

  it('still answers 401, 400 and 415 without the database', async () => {
    expectError(await send(app, 'GET', '/api/products', { headers: { 'x-api-key': undefined } }), 401);
    expectError(await send(app, 'GET', '/api/products/abc'), 400);
    expectError(
      await send(app, 'POST', '/api/products', { body: productBody({ nombre: '', precio: 1 }) }),
      400,
    );
    expectError(
      await send(app, 'POST', '/api/products', {
        body: '{}',
        headers: { 'content-type': 'application/json' },
      }),
      415,
    );
  });
});

describe('database that accepts connections and never answers', () => {
  let app: ProductsApp;
  let server: net.Server;
  let port: number;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    app = await appWithDatabase(`postgres://postgres@127.0.0.1:${port}/products`);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await app?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('answers /health 503 and /api 503 promptly instead of hanging', async () => {
    const started = Date.now();
    const [health, read] = await Promise.all([
      app.inject({ method: 'GET', url: '/health' }),
      send(app, 'GET', '/api/products/1'),
    ]);
    expect(health.statusCode).toBe(503);
    expect(health.json()).toEqual({ status: 'error', checks: { database: 'error' } });
    expectDatabaseUnavailable(read, port);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

itAnsweredNoServerError(ctx);
