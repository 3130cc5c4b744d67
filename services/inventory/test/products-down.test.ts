/**
 * The Inventory service while the Products service is down, slow or misbehaving: every call is
 * bounded by a timeout per attempt, only transient failures are retried (PRODUCTS_RETRIES attempts
 * in all), a circuit breaker answers 503 at once while Products is known to be down and lets a
 * probe through after a pause, and the service itself stays healthy. Timeouts are configured
 * short so the file stays fast. The breaker is per app, so scenarios that open it get their own
 * app; the others share one app (with a breaker that never opens) and one switchable fake.
 */
import type { App } from '@catalogo/kit/app';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import {
  adjustmentBody,
  buildInventory,
  closedPort,
  expectError,
  expectNoWrite,
  type FakeBehaviour,
  type FakeProducts,
  fakeProduct,
  metric,
  purchaseBody,
  type Response,
  send,
  setBody,
  startFakeProducts,
  stockOf,
  UNAVAILABLE,
} from './helpers.js';

const TIMEOUT_MS = 200;
/** The largest pause between two attempts (the client's backoff cap). */
const MAX_BACKOFF_MS = 400;
const FAST = { PRODUCTS_TIMEOUT_MS: String(TIMEOUT_MS), PRODUCTS_BREAKER_THRESHOLD: '100' };
/**
 * Added to every upper bound on a duration: those bounds say "bounded, not hanging", and a loaded
 * two-core machine can stretch a 200 ms attempt several times over. What was done — attempts made,
 * connections opened, which answer came first — is asserted exactly instead.
 */
const SLACK_MS = 5_000;

const OWN_KEY = 'inventory-own-key';

let db: TestDatabase;
/** Closed after each test: the apps and fakes a scenario made for itself. */
const open: { close: () => Promise<void> }[] = [];
/** A fake whose behaviour each test sets, and an app on it whose breaker never opens. */
let shared: FakeProducts;
let sharedApp: App;

beforeAll(async () => {
  db = await createTestDatabase('inventory');
  shared = await startFakeProducts('ok');
  sharedApp = await buildInventory(db.url, shared.url, { ...FAST, PRODUCTS_API_KEY: OWN_KEY });
});
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});
afterAll(async () => {
  await sharedApp?.close();
  await shared?.close();
  await db?.drop();
});

/** Points the shared fake at `behaviour` with a clean request log. */
function useShared(behaviour: FakeBehaviour): FakeProducts {
  shared.behaviour = behaviour;
  shared.script = [];
  shared.requests.length = 0;
  return shared;
}

async function inventory(productsUrl: string, env: Record<string, string> = {}): Promise<App> {
  const app = await buildInventory(db.url, productsUrl, { ...FAST, ...env });
  open.push(app);
  return app;
}

async function fake(behaviour: FakeBehaviour): Promise<FakeProducts> {
  const server = await startFakeProducts(behaviour);
  open.push(server);
  return server;
}

/** Product ids the fakes know, each with stock in the database, a fresh one per call. */
let nextId = 1000;
async function stockedProduct(server: FakeProducts, cantidad = 10, precio = 2.5): Promise<number> {
  const id = nextId++;
  server.prices.set(id, precio);
  await db.pool.query('INSERT INTO inventario (producto_id, cantidad) VALUES ($1, $2)', [id, cantidad]);
  return id;
}

async function timed(action: () => Promise<Response>): Promise<{ res: Response; ms: number }> {
  const started = performance.now();
  const res = await action();
  return { res, ms: Math.round(performance.now() - started) };
}

const buy = (app: App, id: number, headers: Record<string, string> = {}) =>
  send(app, 'POST', '/api/purchases', { body: purchaseBody(id, 1), headers });

function expectUnavailable(res: Response): void {
  const errors = expectError(res, 503);
  expect(errors[0]!.detail).toBe(UNAVAILABLE);
  expect(res.body).not.toMatch(/Error|at |ECONN|stack/);
}

describe('Products stopped (nothing listens on its port)', () => {
  let app: App;
  beforeAll(async () => {
    app = await buildInventory(db.url, `http://127.0.0.1:${await closedPort()}`, FAST);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('a purchase answers 503 within a bounded time and writes nothing', async () => {
    await db.pool.query(
      'INSERT INTO inventario (producto_id, cantidad) VALUES (1, 5) ON CONFLICT DO NOTHING',
    );
    const { res, ms } = await expectNoWrite(db, () => timed(() => buy(app, 1)));
    console.log(`[products-down] stopped Products: 503 in ${ms} ms`);
    expectUnavailable(res);
    expect(ms).toBeLessThan(2 * MAX_BACKOFF_MS + SLACK_MS);
    expect(await metric(app, 'purchases_total', { outcome: 'products_unavailable' })).toBe(1);
  });

  it('reads, sets and adjustments answer 503 too, and write nothing', async () => {
    expectUnavailable(await send(app, 'GET', '/api/inventory/1'));
    await expectNoWrite(db, async () => {
      expectUnavailable(await send(app, 'PATCH', '/api/inventory/1', { body: setBody(1, { cantidad: 9 }) }));
      expectUnavailable(
        await send(app, 'POST', '/api/inventory/1/adjustments', { body: adjustmentBody({ delta: 2 }) }),
      );
    });
    // Listing stock and history needs no product: it keeps working.
    expect((await send(app, 'GET', '/api/inventory')).statusCode).toBe(200);
    expect((await send(app, 'GET', '/api/purchases')).statusCode).toBe(200);
  });

  it('/health stays 200 and reports checks.products "error"', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ status: 'ok', checks: { database: 'ok', products: 'error' } });
  });

  it('a server that resets every connection is tried exactly PRODUCTS_RETRIES times', async () => {
    const server = useShared('reset');
    const { res, ms } = await timed(() => buy(sharedApp, 1));
    console.log(
      `[products-down] resetting Products: 503 after ${server.requests.length} attempts in ${ms} ms`,
    );
    expectUnavailable(res);
    expect(server.requests).toHaveLength(3);
    expect(ms).toBeLessThan(2 * MAX_BACKOFF_MS + SLACK_MS);
  });
});

describe('Products hanging (accepts, never answers)', () => {
  it('answers 503 after attempts × timeout + backoff', async () => {
    const server = useShared('hang');
    const connections = server.connections();
    const { res, ms } = await timed(() => buy(sharedApp, 1));
    console.log(
      `[products-down] hanging Products: 503 after ${server.requests.length} attempts ` +
        `(${server.connections() - connections} connections) in ${ms} ms (timeout ${TIMEOUT_MS} ms per attempt)`,
    );
    expectUnavailable(res);
    expect(server.requests).toHaveLength(3);
    expect(ms).toBeGreaterThanOrEqual(3 * TIMEOUT_MS - 10);
    expect(ms).toBeLessThan(3 * TIMEOUT_MS + 2 * MAX_BACKOFF_MS + SLACK_MS);
  });

  it('bounds an attempt still queued for a connection to Products by its own timeout', async () => {
    const server = await fake('hang');
    // One connection, one attempt: the health check's probe holds the connection for its own 1 s.
    const app = await inventory(server.url, { PRODUCTS_CONNECTIONS: '1', PRODUCTS_RETRIES: '1' });
    const finished: string[] = [];
    const health = app.inject({ method: 'GET', url: '/health' }).then(() => finished.push('health'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { res, ms } = await timed(() => buy(app, 1));
    finished.push('purchase');
    console.log(`[products-down] purchase queued behind a hanging probe: 503 in ${ms} ms`);
    expectUnavailable(res);
    await health;
    // Its 200 ms ran out while the probe still held the only connection for its own 1 s.
    expect(finished).toEqual(['purchase', 'health']);
  });

  it('a body that stops halfway is cut off by the same timeout, and retried', async () => {
    const server = useShared('stall-body');
    const { res, ms } = await timed(() => buy(sharedApp, 1));
    console.log(`[products-down] body stalled: 503 after ${server.requests.length} attempts in ${ms} ms`);
    expectUnavailable(res);
    expect(server.requests).toHaveLength(3);
    expect(ms).toBeGreaterThanOrEqual(3 * TIMEOUT_MS - 10);
    expect(ms).toBeLessThan(3 * TIMEOUT_MS + 2 * MAX_BACKOFF_MS + SLACK_MS);
  });

  it('keeps /health within its own bound while Products hangs', async () => {
    useShared('hang');
    const { res, ms } = await timed(() => sharedApp.inject({ method: 'GET', url: '/health' }));
    expect(res.statusCode).toBe(200);
    expect(res.json().checks).toEqual({ database: 'ok', products: 'error' });
    expect(ms).toBeLessThan(2_000 + SLACK_MS);
  });
});

describe('circuit breaker', () => {
  it('opens after the threshold, then answers 503 without contacting Products', async () => {
    const server = await fake(503);
    const app = await inventory(server.url, {
      PRODUCTS_BREAKER_THRESHOLD: '3',
      PRODUCTS_BREAKER_HALF_OPEN_MS: '60000',
    });
    const id = await stockedProduct(server);
    expect(await metric(app, 'products_circuit_breaker_state')).toBe(0);
    expectUnavailable(await buy(app, id));
    expect(server.requests).toHaveLength(3);
    expect(await metric(app, 'products_circuit_breaker_state')).toBe(1);

    // Were the open breaker to let a call through, it would now wait out three timeouts.
    server.behaviour = 'hang';
    const seen = { requests: server.requests.length, connections: server.connections() };
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { res, ms } = await timed(() => buy(app, id));
      expectUnavailable(res);
      times.push(ms);
    }
    times.sort((a, b) => a - b);
    console.log(
      `[products-down] breaker open: 5 × 503 in ${times.join(', ')} ms, Products contacted 0 times`,
    );
    expect({ requests: server.requests.length, connections: server.connections() }).toEqual(seen);
    expect(await metric(app, 'purchases_total', { outcome: 'products_unavailable' })).toBe(6);
    expect(await stockOf(db, id)).toBe(10);
  });

  it('lets a probe through after the half-open pause: Products back, purchases succeed again', async () => {
    const server = await fake('hang');
    const app = await inventory(server.url, {
      PRODUCTS_BREAKER_THRESHOLD: '2',
      PRODUCTS_BREAKER_HALF_OPEN_MS: '500',
    });
    const id = await stockedProduct(server, 10, 4.5);
    expectUnavailable(await buy(app, id));
    expect(await metric(app, 'products_circuit_breaker_state')).toBe(1);

    server.behaviour = 'ok';
    expectUnavailable(await buy(app, id));
    await new Promise((resolve) => setTimeout(resolve, 550));
    const res = await buy(app, id);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().data.attributes).toMatchObject({ producto_id: id, cantidad: 1, total: 4.5 });
    expect(await metric(app, 'products_circuit_breaker_state')).toBe(0);
    expect(await metric(app, 'purchases_total', { outcome: 'completed' })).toBe(1);
    expect((await buy(app, id)).statusCode).toBe(201);
    expect(await stockOf(db, id)).toBe(8);
  });

  it('a failed probe opens the circuit again', async () => {
    const server = await fake('reset');
    const app = await inventory(server.url, {
      PRODUCTS_BREAKER_THRESHOLD: '1',
      PRODUCTS_BREAKER_HALF_OPEN_MS: '300',
    });
    expectUnavailable(await buy(app, 1));
    expect(server.requests).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expectUnavailable(await buy(app, 1));
    expect(server.requests).toHaveLength(2);
    expect(await metric(app, 'products_circuit_breaker_state')).toBe(1);
  });
});

describe('retries only for transient failures', () => {
  it('a 404 from Products is not retried: one request, 404 "Producto no encontrado"', async () => {
    const server = useShared('ok');
    const errors = expectError(await buy(sharedApp, 424_242), 404);
    expect(errors[0]!.detail).toBe('Producto no encontrado');
    expect(server.requests).toHaveLength(1);
  });

  it('a 503 from Products is retried: PRODUCTS_RETRIES requests in all', async () => {
    const server = await fake(503);
    const app = await inventory(server.url, { PRODUCTS_RETRIES: '4' });
    expectUnavailable(await buy(app, 1));
    expect(server.requests).toHaveLength(4);
  });

  it.each([502, 504] as const)('a %s is retried too', async (status) => {
    const server = useShared(status);
    expectUnavailable(await buy(sharedApp, 1));
    expect(server.requests).toHaveLength(3);
  });

  it.each([
    [500, 500],
    ['401 (a wrong PRODUCTS_API_KEY)', 401],
    ['a document without a valid product', 'garbage'],
  ] as const)('%s is not retried and answers 503', async (_name, behaviour) => {
    const server = useShared(behaviour);
    expectUnavailable(await buy(sharedApp, 1));
    expect(server.requests).toHaveLength(1);
  });

  it('PRODUCTS_RETRIES=1 means a single attempt', async () => {
    const server = await fake('hang');
    const app = await inventory(server.url, { PRODUCTS_RETRIES: '1' });
    const { res, ms } = await timed(() => buy(app, 1));
    expectUnavailable(res);
    expect(server.requests).toHaveLength(1);
    expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });
});

describe('what the Inventory sends to Products', () => {
  it('forwards x-request-id and authenticates with its own key, not the client’s', async () => {
    const server = useShared('ok');
    const id = await stockedProduct(server);
    const res = await buy(sharedApp, id, { 'x-request-id': 'trace-abc.123' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['x-request-id']).toBe('trace-abc.123');
    expect(res.json().included).toEqual([fakeProduct(id, 2.5)]);
    expect(server.requests).toHaveLength(1);
    const [request] = server.requests;
    expect(request).toMatchObject({ method: 'GET', url: `/api/products/${id}` });
    expect(request!.headers['x-request-id']).toBe('trace-abc.123');
    expect(request!.headers['x-api-key']).toBe(OWN_KEY);
    expect(request!.headers.accept).toBe('application/vnd.api+json');
  });

  it('forwards the generated request id when the client sent none', async () => {
    const server = useShared('ok');
    const id = await stockedProduct(server);
    const res = await send(sharedApp, 'GET', `/api/inventory/${id}`);
    expect(res.statusCode).toBe(200);
    expect(server.requests[0]!.headers['x-request-id']).toBe(res.headers['x-request-id']);
  });

  it('keeps the path of a PRODUCTS_URL with a prefix', async () => {
    const server = await fake('ok');
    const app = await inventory(`${server.url}/catalogo/`);
    const id = await stockedProduct(server);
    expect((await send(app, 'GET', `/api/inventory/${id}`)).statusCode).toBe(200);
    expect(server.requests[0]!.url).toBe(`/catalogo/api/products/${id}`);
    const health = await app.inject({ method: 'GET', url: '/health' });
    expect(health.json().checks.products).toBe('ok');
    expect(server.requests[1]!.url).toBe('/catalogo/health');
  });
});

describe('a product Inventory must not sell', () => {
  it.each([
    ['a price with three decimals', { precio: 12.345 }],
    ['a price below a cent', { precio: 0.001 }],
  ])('%s: the purchase answers 503 and writes nothing', async (_label, attributes) => {
    const server = useShared('ok');
    const id = await stockedProduct(server);
    server.documents.set(id, {
      data: { ...fakeProduct(id, 1), attributes: { ...fakeProduct(id, 1).attributes, ...attributes } },
    });
    const res = await expectNoWrite(db, () => buy(sharedApp, id));
    expectUnavailable(res);
    expect(await stockOf(db, id)).toBe(10);
    server.documents.delete(id);
  });

  it('another product than the one asked for: the stock read answers 503', async () => {
    const server = useShared('ok');
    const id = await stockedProduct(server);
    server.documents.set(id, { data: fakeProduct(id + 1, 2.5) });
    expectUnavailable(await send(sharedApp, 'GET', `/api/inventory/${id}`));
    server.documents.delete(id);
  });
});

describe('/health under a flood', () => {
  it('asks Products at most once per PRODUCTS_HEALTH_CACHE_MS, however many hit it at once', async () => {
    const server = await fake('ok');
    const app = await inventory(server.url, { PRODUCTS_HEALTH_CACHE_MS: '60000' });
    const hits = await Promise.all(
      Array.from({ length: 50 }, () => app.inject({ method: 'GET', url: '/health' })),
    );
    for (let i = 0; i < 10; i++) hits.push(await app.inject({ method: 'GET', url: '/health' }));
    expect(hits.map((res) => res.json().checks.products)).toEqual(hits.map(() => 'ok'));
    expect(server.requests.filter((request) => request.url === '/health')).toHaveLength(1);
  });

  it('while the circuit is open, reports Products down without calling it', async () => {
    const server = await fake(503);
    const app = await inventory(server.url, {
      PRODUCTS_BREAKER_THRESHOLD: '3',
      PRODUCTS_BREAKER_HALF_OPEN_MS: '60000',
      PRODUCTS_HEALTH_CACHE_MS: '0',
    });
    expectUnavailable(await buy(app, 1));
    expect(await metric(app, 'products_circuit_breaker_state')).toBe(1);
    const calls = server.requests.length;
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(200);
      expect(res.json().checks.products).toBe('error');
    }
    expect(server.requests).toHaveLength(calls);
  });
});
