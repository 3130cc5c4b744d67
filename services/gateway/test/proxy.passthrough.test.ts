/**
 * Statuses, headers and bodies pass through unchanged, byte for byte: first every status of the
 * contract from a stand-in service, then the real Products and Inventory services (real
 * PostgreSQL), each request sent both directly and through the gateway and the two answers compared.
 */
import type { App } from '@catalogo/kit/app';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { API_KEY, buildInventory, startProducts } from '../../inventory/test/helpers.js';
import { type Gateway, rawRequest, type Stub, startGateway, startStub } from './helpers.js';

const JSONAPI = 'application/vnd.api+json';
/** Headers that belong to each connection or moment, not to the answer. */
const PER_CONNECTION = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

const answerOf = (res: Awaited<ReturnType<typeof rawRequest>>) => ({
  status: res.status,
  headers: Object.fromEntries(Object.entries(res.headers).filter(([name]) => !PER_CONNECTION.has(name))),
  body: res.body.toString(),
});

describe('every status of the contract, from a stand-in service', () => {
  let stub: Stub;
  let gateway: Gateway;
  beforeAll(async () => {
    stub = await startStub();
    gateway = await startGateway({ products: stub.url, inventory: stub.url });
  });
  afterAll(async () => {
    await gateway?.close();
    await stub?.close();
  });

  const error = (status: number) =>
    `{"errors":[{"status":"${status}","title":"T","code":"c","detail":"Ñandú €"}]}`;
  const cases: Array<[number, Record<string, string>, string]> = [
    [200, { etag: 'W/"7"' }, '{"data":{"type":"products","id":"1"}}'],
    [201, { location: '/api/purchases/12', 'idempotent-replayed': 'true' }, '{"data":{"id":"12"}}'],
    [204, {}, ''],
    [304, { etag: 'W/"7"' }, ''],
    [400, {}, error(400)],
    [401, {}, error(401)],
    [403, {}, error(403)],
    [404, {}, error(404)],
    [405, { allow: 'DELETE, GET, HEAD, PATCH' }, error(405)],
    [406, {}, error(406)],
    [409, { 'retry-after': '1' }, error(409)],
    [412, { etag: 'W/"8"' }, error(412)],
    [413, {}, error(413)],
    [415, {}, error(415)],
    [422, {}, error(422)],
    [429, { 'retry-after': '30' }, error(429)],
    [500, {}, error(500)],
    [503, { 'retry-after': '1' }, error(503)],
  ];

  it.each(cases)('%i passes through with its headers and body', async (status, extra, body) => {
    const bodyless = status === 204 || status === 304;
    const sent = {
      'x-request-id': 'r-1',
      'x-instance': 'inventory-a',
      ...(bodyless ? {} : { 'content-type': JSONAPI, 'content-length': String(Buffer.byteLength(body)) }),
      ...extra,
    };
    stub.handle = (_req, res) => res.writeHead(status, sent).end(bodyless ? undefined : body);
    const res = await rawRequest(gateway.url, {
      path: '/api/purchases',
      headers: { 'x-api-key': 'k', 'x-request-id': 'r-1' },
    });
    expect(answerOf(res)).toEqual({ status, headers: sent, body: bodyless ? '' : body });
  });
});

describe('the real services, directly and through the gateway', () => {
  let products: Awaited<ReturnType<typeof startProducts>>;
  let db: TestDatabase;
  let inventory: App;
  let inventoryUrl: string;
  let gateway: Gateway;
  let productId: string;
  let etag: string;

  beforeAll(async () => {
    products = await startProducts();
    db = await createTestDatabase('inventory');
    inventory = await buildInventory(db.url, products.url);
    inventoryUrl = await inventory.listen({ host: '127.0.0.1', port: 0 });
    gateway = await startGateway({ products: products.url, inventory: inventoryUrl });

    const created = await rawRequest(gateway.url, {
      method: 'POST',
      path: '/api/products',
      headers: { 'x-api-key': API_KEY, 'content-type': JSONAPI },
      body: JSON.stringify({ data: { type: 'products', attributes: { nombre: 'Café', precio: 12.5 } } }),
    });
    expect(created.status).toBe(201);
    productId = (JSON.parse(created.body.toString()) as { data: { id: string } }).data.id;
    expect(created.headers.location).toBe(`/api/products/${productId}`);
    const stock = await rawRequest(gateway.url, {
      method: 'PATCH',
      path: `/api/inventory/${productId}`,
      headers: { 'x-api-key': API_KEY, 'content-type': JSONAPI },
      body: JSON.stringify({ data: { type: 'inventories', id: productId, attributes: { cantidad: 5 } } }),
    });
    expect(stock.status).toBe(200);
    etag = String(stock.headers.etag);
  });

  afterAll(async () => {
    await gateway?.close();
    await inventory?.close();
    await products?.close();
    await db?.drop();
  });

  /** The same request, with the same x-request-id, to the service and to the gateway. */
  async function both(service: 'products' | 'inventory', request: Parameters<typeof rawRequest>[1]) {
    const headers = { 'x-request-id': 'comparar-1', ...request.headers };
    const direct = await rawRequest(service === 'products' ? products.url : inventoryUrl, {
      ...request,
      headers,
    });
    const proxied = await rawRequest(gateway.url, { ...request, headers });
    return { direct: answerOf(direct), proxied: answerOf(proxied) };
  }

  const key = { 'x-api-key': API_KEY };
  const json = { ...key, 'content-type': JSONAPI };
  const requests: Array<[number, 'products' | 'inventory', () => Parameters<typeof rawRequest>[1]]> = [
    [200, 'products', () => ({ path: `/api/products/${productId}`, headers: key })],
    [200, 'products', () => ({ path: '/api/products?page[size]=1&sort=-precio', headers: key })],
    [200, 'inventory', () => ({ path: `/api/inventory/${productId}`, headers: key })],
    [
      304,
      'inventory',
      () => ({ path: `/api/inventory/${productId}`, headers: { ...key, 'if-none-match': etag } }),
    ],
    [400, 'products', () => ({ path: '/api/products/abc', headers: key })],
    [400, 'products', () => ({ method: 'POST', path: '/api/products', headers: json, body: '{"data":' })],
    [401, 'products', () => ({ path: '/api/products' })],
    [401, 'inventory', () => ({ path: '/api/purchases', headers: { 'x-api-key': 'otra-clave' } })],
    [
      403,
      'products',
      () => ({
        method: 'POST',
        path: '/api/products',
        headers: json,
        body: '{"data":{"type":"products","id":"9","attributes":{"nombre":"X","precio":1}}}',
      }),
    ],
    [404, 'products', () => ({ path: '/api/products/999999', headers: key })],
    [
      405,
      'products',
      () => ({ method: 'PUT', path: `/api/products/${productId}`, headers: json, body: '{}' }),
    ],
    [
      406,
      'products',
      () => ({ path: '/api/products', headers: { ...key, accept: `${JSONAPI}; charset=x` } }),
    ],
    [
      409,
      'inventory',
      () => ({
        method: 'POST',
        path: '/api/purchases',
        headers: json,
        body: JSON.stringify({
          data: { type: 'purchases', attributes: { producto_id: Number(productId), cantidad: 99 } },
        }),
      }),
    ],
    [
      412,
      'inventory',
      () => ({
        method: 'PATCH',
        path: `/api/inventory/${productId}`,
        headers: { ...json, 'if-match': 'W/"no-es-la-actual"' },
        body: JSON.stringify({ data: { type: 'inventories', id: productId, attributes: { cantidad: 1 } } }),
      }),
    ],
    [
      415,
      'products',
      () => ({
        method: 'POST',
        path: '/api/products',
        headers: { ...key, 'content-type': 'text/plain' },
        body: 'x',
      }),
    ],
  ];

  it.each(requests)('%i from %s: the same answer through the gateway', async (status, service, request) => {
    const { direct, proxied } = await both(service, request());
    expect(direct.status).toBe(status);
    expect(proxied).toEqual(direct);
  });

  it('413 for a body over 1 MiB: the same error, answered by the gateway before the body is sent on', async () => {
    const { direct, proxied } = await both('products', {
      method: 'POST',
      path: '/api/products',
      headers: json,
      body: Buffer.alloc(1024 * 1024 + 1, 'a'),
    });
    expect(direct.status).toBe(413);
    expect(proxied.status).toBe(413);
    expect(proxied.headers['content-type']).toBe(JSONAPI);
    // The same error object; its members in another order (the gateway has no response schema).
    expect(JSON.parse(proxied.body)).toEqual(JSON.parse(direct.body));
  });

  it('a purchase with an Idempotency-Key: created through the gateway, replayed the same both ways', async () => {
    const purchase = {
      method: 'POST',
      path: '/api/purchases',
      headers: { ...json, 'idempotency-key': 'pedido-pasarela-1' },
      body: JSON.stringify({
        data: { type: 'purchases', attributes: { producto_id: Number(productId), cantidad: 2 } },
      }),
    };
    const first = await rawRequest(gateway.url, purchase);
    expect(first.status).toBe(201);
    expect(first.headers.location).toMatch(/^\/api\/purchases\/\d+$/);
    const { direct, proxied } = await both('inventory', purchase);
    expect(direct.headers['idempotent-replayed']).toBe('true');
    expect(proxied).toEqual(direct);
    expect(proxied.body).toBe(first.body.toString());
  });

  it('204 on delete, through the gateway', async () => {
    const created = await rawRequest(gateway.url, {
      method: 'POST',
      path: '/api/products',
      headers: json,
      body: JSON.stringify({ data: { type: 'products', attributes: { nombre: 'Borrar', precio: 1 } } }),
    });
    const res = await rawRequest(gateway.url, {
      method: 'DELETE',
      path: String(created.headers.location),
      headers: key,
    });
    expect(res.status).toBe(204);
    expect(res.body.length).toBe(0);
  });
});
