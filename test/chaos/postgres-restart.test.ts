/**
 * PostgreSQL stopped and started again under load. Both services (in this process, listening on
 * real ports) run against an embedded PostgreSQL of this test's own; a bounded load of reads and
 * purchases runs while PostgreSQL is stopped (fast shutdown: sessions cut), held down, and started
 * again on the same data directory and port. Checked: while it is down every /api request answers
 * 503 as a JSON:API error ("Base de datos no disponible", or for Inventory requests that first ask
 * the Products service, "Servicio de productos no disponible") and `/health` answers 503 with
 * `checks.database = "error"`; once it is back both services serve again by themselves (2xx,
 * `/health` 200) without a restart; never a 500; the stock sums hold.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@catalogo/kit/app';
import { migrate } from '@catalogo/kit/db';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type EmbeddedCluster, startEmbeddedPostgres } from '../../scripts/embedded-postgres.js';
import { buildApp as buildInventory } from '../../services/inventory/src/app.js';
import { loadConfig as loadInventoryConfig } from '../../services/inventory/src/config.js';
import { MIGRATIONS_DIR as INVENTORY_MIGRATIONS } from '../../services/inventory/src/migrations.js';
import { purchaseBody } from '../../services/inventory/test/helpers.js';
import { buildApp as buildProducts } from '../../services/products/src/app.js';
import { loadConfig as loadProductsConfig } from '../../services/products/src/config.js';
import { MIGRATIONS_DIR as PRODUCTS_MIGRATIONS } from '../../services/products/src/migrations.js';
import { brokenLedgers, historyIds, ledger, unpairedPurchases } from './support/chaos.invariants.js';
import { API_KEY, jsonApiHeaders, Load, purchaseOf, type Sample, workers } from './support/chaos.load.js';

const PRODUCTS = 3;
const INITIAL_STOCK = 1_000_000;
const CLIENTS = 8;
const UP_MS = 2_000;
const DOWN_MS = 3_000;
const RECOVERED_MS = 2_000;
const DB_UNAVAILABLE = 'Base de datos no disponible';
const PRODUCTS_UNAVAILABLE = 'Servicio de productos no disponible';

let root: string;
let dataDir: string;
let cluster: EmbeddedCluster;
let products: App;
let inventory: App;
let productsUrl: string;
let inventoryUrl: string;
let inventoryPool: pg.Pool;
/** Lines the services logged as unexpected errors (the cause of any 500). */
const unexpected: string[] = [];

const logger = (service: string) =>
  pino(
    { level: 'error', base: { service } },
    {
      write: (line: string) => {
        if (line.includes('unexpected error')) unexpected.push(line);
      },
    },
  );

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'catalogo-chaos-pg-'));
  dataDir = join(root, 'data');
  cluster = await startEmbeddedPostgres({ dataDir, persistent: true });
  await cluster.ensureDatabase('products_db');
  await cluster.ensureDatabase('inventory_db');
  const quiet = pino({ level: 'warn' });
  await migrate(cluster.url('products_db'), PRODUCTS_MIGRATIONS, quiet);
  await migrate(cluster.url('inventory_db'), INVENTORY_MIGRATIONS, quiet);
  products = await buildProducts(
    loadProductsConfig({ DATABASE_URL: cluster.url('products_db'), API_KEYS: API_KEY }),
    logger('products'),
  );
  productsUrl = await products.listen({ host: '127.0.0.1', port: 0 });
  inventory = await buildInventory(
    loadInventoryConfig({
      DATABASE_URL: cluster.url('inventory_db'),
      API_KEYS: API_KEY,
      PRODUCTS_URL: productsUrl,
      PRODUCTS_API_KEY: API_KEY,
      PRODUCTS_TIMEOUT_MS: '2000',
      PRODUCTS_RETRIES: '2',
      PRODUCTS_BREAKER_THRESHOLD: '5',
      PRODUCTS_BREAKER_HALF_OPEN_MS: '500',
    }),
    logger('inventory'),
  );
  inventoryUrl = await inventory.listen({ host: '127.0.0.1', port: 0 });
  inventoryPool = new pg.Pool({ connectionString: cluster.url('inventory_db'), max: 2 });
  // An idle connection cut by the restart must not crash the test process.
  inventoryPool.on('error', () => {});
});

afterAll(async () => {
  await inventory?.close();
  await products?.close();
  await inventoryPool?.end();
  await cluster?.stop();
  if (cluster) await rm(cluster.dataDir, { recursive: true, force: true });
  if (root) await rm(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;

interface Health {
  status: number;
  database: string | undefined;
  contentType: string | undefined;
}

it('answers 503 while PostgreSQL is down and serves again by itself once it is back', async () => {
  const load = new Load('postgres-restart');
  load.log(`embedded PostgreSQL on port ${cluster.port}, data in ${cluster.dataDir}`);

  const initial = await load.seed(
    { products: productsUrl, inventory: inventoryUrl },
    PRODUCTS,
    INITIAL_STOCK,
    () => 2.5,
  );
  const ids = [...initial.keys()];

  // What the clients ask, each tagged with the answer PostgreSQL being down calls for.
  const requests: { name: string; unavailable: string[]; send: () => Promise<Sample> }[] = [
    {
      name: 'GET product',
      unavailable: [DB_UNAVAILABLE],
      send: () => load.send('GET product', `${productsUrl}/api/products/${pick(ids)}`),
    },
    {
      name: 'GET products',
      unavailable: [DB_UNAVAILABLE],
      send: () => load.send('GET products', `${productsUrl}/api/products?page[size]=5`),
    },
    {
      name: 'GET inventory',
      unavailable: [DB_UNAVAILABLE, PRODUCTS_UNAVAILABLE],
      send: () => load.send('GET inventory', `${inventoryUrl}/api/inventory/${pick(ids)}`),
    },
    {
      name: 'GET inventories',
      unavailable: [DB_UNAVAILABLE],
      send: () => load.send('GET inventories', `${inventoryUrl}/api/inventory?page[size]=5`),
    },
    {
      name: 'GET purchases',
      unavailable: [DB_UNAVAILABLE],
      send: () => load.send('GET purchases', `${inventoryUrl}/api/purchases?page[size]=5`),
    },
    {
      name: 'purchase',
      unavailable: [DB_UNAVAILABLE, PRODUCTS_UNAVAILABLE],
      send: () =>
        load.send('purchase', `${inventoryUrl}/api/purchases`, {
          method: 'POST',
          headers: jsonApiHeaders,
          body: purchaseBody(pick(ids), 1),
        }),
    },
  ];

  const health: { phase: string; start: number; end: number; products: Health; inventory: Health }[] = [];
  const healthOf = async (url: string): Promise<Health> => {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { checks?: { database?: string } };
    return {
      status: res.status,
      database: body.checks?.database,
      contentType: res.headers.get('content-type') ?? undefined,
    };
  };
  const checkHealth = async () => {
    const phase = load.phase;
    const start = load.now();
    const [p, i] = await Promise.all([healthOf(productsUrl), healthOf(inventoryUrl)]);
    health.push({ phase, start, end: load.now(), products: p, inventory: i });
    return p.status === 200 && i.status === 200;
  };

  let stop = false;
  const clients = workers(
    CLIENTS,
    () => !stop,
    50_000,
    () => pick(requests).send(),
  );
  const monitor = (async () => {
    while (!stop) {
      await checkHealth();
      await sleep(200);
    }
  })();

  load.setPhase('up');
  await sleep(UP_MS);

  load.setPhase('stopping');
  const stoppingAt = load.now();
  await cluster.stop();
  load.setPhase('down');
  const downAt = load.now();
  load.log(`PostgreSQL stopped in ${(downAt - stoppingAt).toFixed(0)} ms`);
  await sleep(DOWN_MS);

  load.setPhase('starting');
  const startingAt = load.now();
  const port = cluster.port;
  cluster = await startEmbeddedPostgres({ dataDir, port, persistent: true });
  expect(cluster.port, 'PostgreSQL came back on another port').toBe(port);
  load.setPhase('recovering');
  const backAt = load.now();
  load.log(`PostgreSQL started again on port ${cluster.port} in ${(backAt - startingAt).toFixed(0)} ms`);

  // Recovered when one round of every request and both health checks succeeds (bounded).
  let recoveredAt: number | undefined;
  while (load.now() - backAt < 30_000) {
    const round = await Promise.all(requests.map((r) => r.send()));
    const healthy = await checkHealth();
    if (healthy && round.every((s) => typeof s.status === 'number' && s.status < 300)) {
      recoveredAt = load.now();
      break;
    }
    await sleep(100);
  }
  expect(recoveredAt, 'services did not recover within 30 s').toBeDefined();
  load.log(
    `both services served again ${((recoveredAt! - backAt) / 1000).toFixed(2)} s after PostgreSQL was back`,
  );
  load.setPhase('recovered');
  await sleep(RECOVERED_MS);
  stop = true;
  await Promise.all([clients, monitor]);
  for (const line of load.summary()) load.log(line);

  const api = load.of().filter((s) => s.name !== 'create product' && s.name !== 'set stock');
  expect(unexpected, 'unexpected errors logged').toEqual([]);
  expect(api.filter((s) => s.status === 'failed')).toEqual([]);
  expect(api.filter((s) => typeof s.status === 'number' && s.status >= 500 && s.status !== 503)).toEqual([]);
  expect(api.filter((s) => s.problem !== undefined)).toEqual([]);
  // Nothing refused but for the outage: a 503 ended after the stop began and started before recovery.
  const unavailable = api.filter((s) => s.status === 503);
  expect(unavailable.filter((s) => s.end < stoppingAt || s.start > recoveredAt!)).toEqual([]);
  expect(api.filter((s) => typeof s.status === 'number' && s.status >= 400 && s.status !== 503)).toEqual([]);

  // While it was down, every request (sent and answered within the outage) was a 503 for that reason.
  const duringOutage = api.filter((s) => s.start >= downAt && s.end <= startingAt);
  expect(duringOutage.length).toBeGreaterThan(50);
  for (const r of requests) {
    const samples = duringOutage.filter((s) => s.name === r.name);
    expect(samples.length, r.name).toBeGreaterThan(0);
    expect(
      samples.filter((s) => s.status !== 503 || !r.unavailable.includes(s.detail ?? '')),
      r.name,
    ).toEqual([]);
  }
  const healthDown = health.filter((h) => h.start >= downAt && h.end <= startingAt);
  expect(healthDown.length).toBeGreaterThan(0);
  for (const h of healthDown) {
    for (const service of [h.products, h.inventory]) {
      expect(service).toEqual({
        status: 503,
        database: 'error',
        contentType: expect.stringMatching(/^application\/json/),
      });
    }
  }

  // Back by themselves: everything after recovery succeeded, and /health is 200 again.
  const after = api.filter((s) => s.start >= recoveredAt!);
  expect(after.length).toBeGreaterThan(20);
  expect(after.filter((s) => s.status !== 200 && s.status !== 201)).toEqual([]);
  const healthAfter = health.filter((h) => h.start >= recoveredAt!);
  for (const h of healthAfter) {
    expect([h.products.status, h.products.database, h.inventory.status, h.inventory.database]).toEqual([
      200,
      'ok',
      200,
      'ok',
    ]);
  }

  // The stock sums hold; a purchase answered 201 is in the history, and any other history row is
  // one whose answer was a 503 after the commit (its connection cut as it completed).
  const sold = api.filter((s) => s.name === 'purchase' && s.status === 201).map(purchaseOf);
  const refused = api.filter((s) => s.name === 'purchase' && s.status === 503).length;
  const ledgers = await ledger(inventoryPool, initial);
  expect(brokenLedgers(ledgers)).toEqual([]);
  const history = await historyIds(inventoryPool);
  expect(sold.filter((p) => !history.has(p.id))).toEqual([]);
  expect(history.size - sold.length).toBeLessThanOrEqual(refused);
  expect((await unpairedPurchases(inventoryPool)).historyWithoutEvent).toBe(0);
  load.log(
    `${api.length} requests (${sold.length} purchases sold, ${refused} refused with 503), ` +
      `${health.length} health rounds; during the outage ${duringOutage.length} requests, all 503; ` +
      `${history.size - sold.length} purchases committed without a 201; sums hold for ${ledgers.length} products`,
  );
});
