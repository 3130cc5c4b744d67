/**
 * Routing by path prefix over real HTTP, with two stand-in services that echo what reached them:
 * each prefix goes to its service with the path, query, method, body and request headers as sent;
 * anything else under /api is the gateway's JSON:API 404.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { echo, type Gateway, rawRequest, type Stub, startGateway, startStub } from './helpers.js';

let products: Stub;
let inventory: Stub;
let gateway: Gateway;

beforeAll(async () => {
  products = await startStub();
  inventory = await startStub();
  gateway = await startGateway({ products: products.url, inventory: inventory.url });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([products?.close(), inventory?.close()]);
});

beforeEach(() => {
  products.requests.length = 0;
  inventory.requests.length = 0;
  products.handle = echo;
  inventory.handle = echo;
});

const KEY = 'clave-de-prueba-secreta';

it.each([
  ['GET', '/api/products', 'products'],
  ['GET', '/api/products?page[size]=5&sort=-precio', 'products'],
  ['GET', '/api/products/7', 'products'],
  ['PATCH', '/api/products/7', 'products'],
  ['DELETE', '/api/products/7', 'products'],
  ['GET', '/api/inventory/7', 'inventory'],
  ['POST', '/api/inventory/7/adjustments', 'inventory'],
  ['GET', '/api/inventory/7/movements?page[size]=2', 'inventory'],
  ['POST', '/api/purchases', 'inventory'],
  ['GET', '/api/purchases?filter[producto_id]=1', 'inventory'],
  ['POST', '/api/purchases/3/cancellation', 'inventory'],
  ['POST', '/api/orders', 'inventory'],
  ['GET', '/api/orders/2', 'inventory'],
  ['POST', '/api/reservations', 'inventory'],
  ['DELETE', '/api/reservations/4', 'inventory'],
  ['GET', '/api/events', 'inventory'],
  ['PUT', '/api/products/7', 'products'],
  ['OPTIONS', '/api/orders', 'inventory'],
] as const)('%s %s goes to %s unchanged', async (method, path, service) => {
  const withBody = method === 'POST' || method === 'PATCH' || method === 'PUT';
  const body = withBody ? '{"data":{"type":"x","attributes":{"nombre":"Café ☕"}}}' : undefined;
  const res = await fetch(`${gateway.url}${path}`, {
    method,
    headers: {
      'x-api-key': KEY,
      accept: 'application/vnd.api+json',
      ...(body ? { 'content-type': 'application/vnd.api+json' } : {}),
    },
    body,
  });
  expect(res.status).toBe(200);
  const target = service === 'products' ? products : inventory;
  const other = service === 'products' ? inventory : products;
  expect(other.requests).toEqual([]);
  expect(target.requests).toHaveLength(1);
  const seen = target.requests[0]!;
  expect(seen.method).toBe(method);
  expect(seen.url).toBe(path);
  expect(seen.body.toString()).toBe(body ?? '');
  expect(seen.headers['x-api-key']).toBe(KEY);
  expect(seen.headers.accept).toBe('application/vnd.api+json');
  if (body) {
    expect(seen.headers['content-type']).toBe('application/vnd.api+json');
    expect(seen.headers['content-length']).toBe(String(Buffer.byteLength(body)));
  }
});

it('forwards the request headers the API reads, and says who the client was', async () => {
  await fetch(`${gateway.url}/api/products/1`, {
    method: 'PATCH',
    headers: {
      'x-api-key': KEY,
      'if-match': 'W/"3"',
      'if-none-match': '"abc"',
      'idempotency-key': 'pedido-2026-0001',
      'content-type': 'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"',
      accept: 'application/vnd.api+json, */*;q=0.1',
      'last-event-id': '42',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'x-request-id': 'peticion-123',
      'x-forwarded-for': '203.0.113.9',
    },
    body: '{}',
  });
  const { headers } = products.requests[0]!;
  expect(headers).toMatchObject({
    'x-api-key': KEY,
    'if-match': 'W/"3"',
    'if-none-match': '"abc"',
    'idempotency-key': 'pedido-2026-0001',
    'content-type': 'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"',
    accept: 'application/vnd.api+json, */*;q=0.1',
    'last-event-id': '42',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    // One id end to end: the service logs the request under the id the client (or the gateway) gave.
    'x-request-id': 'peticion-123',
    'x-forwarded-for': '203.0.113.9, 127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': new URL(gateway.url).host,
    host: new URL(products.url).host,
  });
});

it('drops hop-by-hop headers both ways', async () => {
  products.handle = (_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/vnd.api+json',
      'keep-alive': 'timeout=1',
      'x-internal': 'connection-scoped',
      connection: 'keep-alive, x-internal',
      'content-length': '2',
    });
    res.end('{}');
  };
  const res = await rawRequest(gateway.url, {
    path: '/api/products',
    headers: { 'x-api-key': KEY, connection: 'keep-alive, x-private', 'x-private': 'secret' },
  });
  expect(res.status).toBe(200);
  expect(res.body.toString()).toBe('{}');
  // The gateway's own keep-alive, not the service's.
  expect(res.headers['keep-alive']).toBe('timeout=72');
  expect(res.headers['x-internal']).toBeUndefined();
  expect(products.requests[0]!.headers['x-private']).toBeUndefined();
});

it.each(['/api', '/api/', '/api/productsx', '/api/product', '/api/unknown/1', '/api/health'])(
  'GET %s is the gateway’s JSON:API 404, and reaches no service',
  async (path) => {
    const res = await fetch(`${gateway.url}${path}`, { headers: { 'x-api-key': KEY } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/vnd.api+json');
    expect(await res.json()).toEqual({
      errors: [
        {
          status: '404',
          title: 'Not Found',
          code: 'route_not_found',
          detail: `No existe la ruta GET ${path}`,
        },
      ],
    });
    expect([...products.requests, ...inventory.requests]).toEqual([]);
  },
);

it('a POST to an unknown path under /api is a 404 too, its body unread', async () => {
  const res = await fetch(`${gateway.url}/api/carts`, {
    method: 'POST',
    headers: { 'x-api-key': KEY, 'content-type': 'application/vnd.api+json' },
    body: '{"data":{}}',
  });
  expect(res.status).toBe(404);
  expect(res.headers.get('content-type')).toBe('application/vnd.api+json');
});

it('a path that climbs out of its prefix is refused, not forwarded', async () => {
  for (const path of ['/api/products/../../metrics', '/api/products/%2e%2e/%2e%2e/metrics']) {
    const res = await rawRequest(gateway.url, { path, headers: { 'x-api-key': KEY } });
    expect(res.status, path).toBe(400);
    expect(res.headers['content-type']).toBe('application/vnd.api+json');
  }
  expect(products.requests).toEqual([]);
});
