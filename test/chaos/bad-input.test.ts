/**
 * Property-based bad input. fast-check generates requests to every endpoint of both services, each a
 * valid request broken on purpose (wrong types, missing members, out-of-range and non-integer
 * numbers, NUL and control characters, 100 000-deep nesting, long and odd unicode strings, wrong
 * media types and Accept, bad path ids and query parameters, invalid JSON bytes, duplicate keys,
 * stale If-Match and malformed Idempotency-Key headers, and well-formed requests the stock, the prices
 * or the state of an order or reservation forbid). The rule under test (docs/api.md §1): a malformed
 * request is never a 5xx, is always answered with a JSON:API error document, and writes nothing —
 * checked after every request on every table a request writes (`WRITTEN_BY_REQUESTS`).
 *
 * Requests go through `app.inject`; the Inventory service asks a real Products service over HTTP.
 * Replay a failure with CHAOS_SEED=<seed printed below>; CHAOS_RUNS sets the runs per endpoint.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  headers,
  orderBody,
  purchaseBody,
  reservationBody,
  reservationPatch,
  useInventoryApp,
} from '../../services/inventory/test/helpers.js';
import { ENDPOINTS, type Endpoint, type Seeds } from './support/bad-input.endpoints.js';
import { type BadRequestCase, badRequestCase, toRequest } from './support/bad-input.faults.js';
import { errorDocumentProblem, snapshot, WRITTEN_BY_REQUESTS } from './support/chaos.assertions.js';

// 100 per endpoint: as many requests in all (1 800) as 150 for each of the first 12 endpoints.
const RUNS_PER_ENDPOINT = Number(process.env.CHAOS_RUNS ?? 100);
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 2 ** 31);

const harness = useInventoryApp();
let seeds: Seeds;
let before: Record<string, string>;

const tally = {
  requests: 0,
  byEndpoint: new Map<string, number>(),
  byStatus: new Map<number, number>(),
  byFault: new Map<string, number>(),
  /** The first failing request of each endpoint, before shrinking replays a changed database. */
  failures: new Map<string, string>(),
};
const count = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

async function tables(): Promise<Record<string, string>> {
  return {
    ...(await snapshot(harness.products().db.pool, WRITTEN_BY_REQUESTS.products)),
    ...(await snapshot(harness.db().pool, WRITTEN_BY_REQUESTS.inventory)),
  };
}

beforeAll(async () => {
  const [cheap, tenth, unstocked, dear] = [
    await harness.createProduct(10, 'Barato'),
    await harness.createProduct(0.1, 'Céntimos'),
    await harness.createProduct(1.5, 'Sin stock'),
    await harness.createProduct(99999999.99, 'Carísimo'),
  ];
  await harness.setStock(cheap, 5);
  await harness.setStock(tenth, 3);
  await harness.setStock(dear, 5);
  const made = async (method: 'POST' | 'PATCH', url: string, body: unknown, status: number) => {
    const res = await harness.app().inject({ method, url, headers, payload: body as object });
    expect(res.statusCode, res.body).toBe(status);
    return Number(res.json().data.id);
  };
  const purchase = await made('POST', '/api/purchases', purchaseBody(cheap, 1), 201);
  const order = await made('POST', '/api/orders', orderBody([{ producto_id: cheap, cantidad: 1 }]), 201);
  const { rows } = await harness
    .db()
    .pool.query<{ id: number }>('SELECT id FROM historial_compras WHERE pedido_id = $1', [order]);
  const line = [{ producto_id: tenth, cantidad: 1 }];
  const reservation = await made('POST', '/api/reservations', reservationBody(line, 86_400), 201);
  const confirmed = await made('POST', '/api/reservations', reservationBody(line, 86_400), 201);
  await made(
    'PATCH',
    `/api/reservations/${confirmed}`,
    reservationPatch(String(confirmed), 'confirmada'),
    200,
  );
  const stock = async (id: number) =>
    (await harness.db().pool.query('SELECT cantidad FROM inventario WHERE producto_id = $1', [id])).rows[0]
      .cantidad as number;
  seeds = {
    stocked: [
      { id: cheap, stock: await stock(cheap) },
      { id: tenth, stock: await stock(tenth) },
    ],
    unstocked,
    dear,
    purchase,
    order,
    orderLine: rows[0]!.id,
    reservation,
    confirmedReservation: confirmed,
  };
  expect(seeds.stocked.map((p) => p.stock)).toEqual([3, 1]);
  before = await tables();
  console.log(`[chaos:bad-input] fast-check seed ${SEED}, ${RUNS_PER_ENDPOINT} runs per endpoint`);
  console.log(`[chaos:bad-input] tables before: ${JSON.stringify(before)}`);
});

afterAll(() => {
  const list = (map: Map<string | number, number>) =>
    [...map.entries()]
      .sort(([a], [b]) => String(a).localeCompare(String(b)))
      .map(([key, n]) => `${key}: ${n}`)
      .join(', ');
  console.log(`[chaos:bad-input] ${tally.requests} requests sent (shrinking included)`);
  console.log(`[chaos:bad-input] by endpoint: ${list(tally.byEndpoint)}`);
  console.log(`[chaos:bad-input] by status: ${list(tally.byStatus)}`);
  console.log(`[chaos:bad-input] faults applied by kind: ${list(tally.byFault)}`);
  for (const [name, what] of tally.failures)
    console.log(`[chaos:bad-input] FIRST FAILURE of ${name}: ${what}`);
});

async function refusedWithoutWriting(endpoint: Endpoint, c: BadRequestCase): Promise<void> {
  const request = toRequest(endpoint, c, seeds);
  const app = endpoint.service === 'products' ? harness.products().app : harness.app();
  const res = await app.inject(request);
  tally.requests++;
  count(tally.byEndpoint, endpoint.name);
  count(tally.byStatus, res.statusCode);
  for (const f of c.faults) count(tally.byFault, f.kind);
  const what = `${request.method} ${request.url.slice(0, 300)} [${c.faults.map((f) => `${f.kind}: ${f.label}`).join('; ')}] → ${res.statusCode} ${res.body.slice(0, 300)}`;
  try {
    expect(res.statusCode, what).toBeLessThan(500);
    const contentType = res.headers['content-type'];
    const problem = errorDocumentProblem({
      status: res.statusCode,
      contentType: contentType === undefined ? undefined : String(contentType),
      body: res.body,
    });
    expect(problem, what).toBeUndefined();
    expect(await tables(), what).toEqual(before);
  } catch (err) {
    if (!tally.failures.has(endpoint.name)) tally.failures.set(endpoint.name, what);
    throw err;
  }
}

for (const endpoint of ENDPOINTS) {
  it(`${endpoint.name}: ${RUNS_PER_ENDPOINT} broken requests, each refused with a JSON:API 4xx and no write`, async () => {
    const property = fc.asyncProperty(badRequestCase(endpoint, seeds), (c) =>
      refusedWithoutWriting(endpoint, c),
    );
    await fc.assert(property, {
      numRuns: RUNS_PER_ENDPOINT,
      seed: SEED,
    });
  });
}

it('sent every generated request and left every table as it was', async () => {
  expect(tally.requests).toBeGreaterThanOrEqual(RUNS_PER_ENDPOINT * ENDPOINTS.length);
  expect(await tables()).toEqual(before);
});
