/**
 * When a service does not answer: down (connection refused) and too slow are JSON:API 503s with
 * Retry-After, a connection cut before the answer is complete a 502; all within the timeout. The
 * API key never appears in the gateway's log, whatever happens to the request.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { closedPortUrl, echo, type Gateway, type Stub, startGateway, startStub } from './helpers.js';

const KEY = 'clave-que-no-debe-aparecer-en-el-log';
const UPSTREAM_TIMEOUT_MS = 1_000;

let products: Stub;
let gateway: Gateway;
let down: string;

beforeAll(async () => {
  products = await startStub();
  down = await closedPortUrl();
  gateway = await startGateway(
    { products: products.url, inventory: down },
    { UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) },
  );
});

afterAll(async () => {
  await gateway?.close();
  await products?.close();
});

beforeEach(() => {
  products.handle = echo;
});

async function call(path: string, init: RequestInit = {}) {
  const started = performance.now();
  const res = await fetch(`${gateway.url}${path}`, {
    ...init,
    headers: { 'x-api-key': KEY, 'content-type': 'application/vnd.api+json', ...init.headers },
  });
  const text = await res.text();
  return { res, text, ms: performance.now() - started };
}

it('a service that refuses connections: 503, JSON:API in Spanish, Retry-After', async () => {
  for (const [method, path] of [
    ['GET', '/api/inventory/1'],
    ['POST', '/api/purchases'],
    ['GET', '/api/events'],
  ] as const) {
    const { res, text } = await call(path, method === 'POST' ? { method, body: '{"data":{}}' } : {});
    expect(res.status, path).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/vnd.api+json');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(JSON.parse(text)).toEqual({
      errors: [
        {
          status: '503',
          title: 'Service Unavailable',
          code: 'upstream_unavailable',
          detail: 'El servicio de inventario no está disponible; vuelva a intentarlo',
          meta: { upstream: 'inventory' },
        },
      ],
    });
  }
});

it('a service that does not answer in time: 503 once the timeout has passed, not much later', async () => {
  products.handle = () => {};
  const { res, text, ms } = await call('/api/products/1');
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(JSON.parse(text).errors[0]).toMatchObject({
    code: 'upstream_timeout',
    detail: 'El servicio de productos no respondió a tiempo; vuelva a intentarlo',
  });
  expect(ms).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS * 0.9);
  // Generous: a busy machine delays timers, but an unbounded wait would be far past this.
  expect(ms).toBeLessThan(UPSTREAM_TIMEOUT_MS + 8_000);
});

it('a service that stops in the middle of its answer body: the body stops too, never a 2xx completed', async () => {
  products.handle = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.api+json', 'content-length': '1000' });
    res.write('{"data":');
    setTimeout(() => res.destroy(), 50);
  };
  await expect(call('/api/products/1')).rejects.toThrow();
});

it('a connection cut after the request was sent and before any answer: 502, the outcome unknown', async () => {
  products.handle = (req) => req.socket.destroy();
  const { res, text } = await call('/api/products', { method: 'POST', body: '{"data":{}}' });
  expect(res.status).toBe(502);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(JSON.parse(text).errors[0]).toMatchObject({
    status: '502',
    code: 'upstream_failed',
    detail:
      'El servicio de productos cortó la conexión sin dar una respuesta completa; puede que la petición se haya aplicado',
  });
});

it('the service’s own 503 is passed through once, not retried by the gateway', async () => {
  let calls = 0;
  products.handle = (_req, res) => {
    calls += 1;
    const body = '{"errors":[{"status":"503","title":"Service Unavailable","detail":"Ocupado"}]}';
    res.writeHead(503, { 'content-type': 'application/vnd.api+json', 'retry-after': '1' }).end(body);
  };
  const { res, text } = await call('/api/products/1');
  expect(res.status).toBe(503);
  expect(text).toBe('{"errors":[{"status":"503","title":"Service Unavailable","detail":"Ocupado"}]}');
  expect(calls).toBe(1);
});

it('the API key is in no line of the log, whatever happened to the request', async () => {
  await call('/api/products?api_key=otra', { headers: { 'x-request-id': 'buscar-en-el-log' } });
  await call('/api/inventory/1');
  await call('/api/nothing');
  expect(gateway.log()).toContain('buscar-en-el-log');
  expect(gateway.log()).toContain('/api/products?api_key=[redacted]');
  expect(gateway.log()).not.toContain(KEY);
  expect(gateway.log()).not.toContain('otra');
});
