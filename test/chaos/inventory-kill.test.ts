/**
 * The Inventory process SIGKILLed in the middle of a purchase load. Inventory runs as its own
 * process (as in production); concurrent buyers purchase several products until it is killed with
 * `kill -9` — no shutdown hook, requests and statements cut wherever they are — then it is started
 * again on the same port and database. A purchase is one SQL statement, so whatever the kill cut,
 * each purchase is in the database entirely (stock decrement, history row, both outbox events) or
 * not at all. Checked per product: stock + Σ history cantidad = initial stock; one
 * `inventory.updated` per purchase; every history row has its `purchase.completed` event and every
 * event its row; every purchase answered 201 is in the history; no 5xx ever.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../scripts/embedded-postgres.js';
import { purchaseBody, startProducts } from '../../services/inventory/test/helpers.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { brokenLedgers, historyIds, ledger, unpairedPurchases } from './support/chaos.invariants.js';
import { API_KEY, jsonApiHeaders, Load, purchaseOf, workers } from './support/chaos.load.js';
import {
  killHard,
  type ServiceProcess,
  spawnService,
  stopGracefully,
  waitHealthy,
} from './support/chaos.processes.js';

const PRODUCTS = 4;
const INITIAL_STOCK = 1_000;
const BUYERS = 16;
/** The kill comes once this many purchases have been answered (or after KILL_AFTER_MS at most). */
const ANSWERED_BEFORE_KILL = 300;
const KILL_AFTER_MS = 15_000;

let products: Awaited<ReturnType<typeof startProducts>>;
let db: TestDatabase;
let port: number;
const started: ServiceProcess[] = [];

const startInventory = () => {
  const service = spawnService('inventory', port, {
    DATABASE_URL: db.url,
    API_KEYS: API_KEY,
    PRODUCTS_URL: products.url,
    PRODUCTS_API_KEY: API_KEY,
  });
  started.push(service);
  return service;
};

beforeAll(async () => {
  products = await startProducts();
  db = await createTestDatabase('inventory');
  port = await freePort();
});

afterAll(async () => {
  for (const service of started) await stopGracefully(service);
  await products?.close();
  await db?.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('keeps every purchase whole when the Inventory process is SIGKILLed mid-load', async () => {
  let inventory = startInventory();
  const bootMs = await waitHealthy(inventory);
  const load = new Load('inventory-kill');
  load.log(`inventory process ${inventory.child.pid} healthy on ${inventory.url} after ${bootMs} ms`);

  const initial = await load.seed(
    { products: products.url, inventory: inventory.url },
    PRODUCTS,
    INITIAL_STOCK,
    (i) => 1.1 + i,
  );
  const ids = [...initial.keys()];

  load.setPhase('purchases');
  let killed = false;
  const buying = workers(
    BUYERS,
    () => !killed,
    10_000,
    () =>
      load.send('purchase', `${inventory.url}/api/purchases`, {
        method: 'POST',
        headers: jsonApiHeaders,
        body: purchaseBody(ids[Math.floor(Math.random() * ids.length)]!, 1 + Math.floor(Math.random() * 3)),
      }),
  );
  const loadStart = Date.now();
  while (load.samples.length < ANSWERED_BEFORE_KILL + PRODUCTS && Date.now() - loadStart < KILL_AFTER_MS) {
    await sleep(5);
  }
  const inFlightAtKill = load.inFlight;
  inventory.child.kill('SIGKILL');
  killed = true;
  load.setPhase('after kill');
  await killHard(inventory);
  await buying;
  load.log(`SIGKILL sent to ${inventory.child.pid} with ${inFlightAtKill} purchases in flight`);

  inventory = startInventory();
  const restartMs = await waitHealthy(inventory);
  load.log(`inventory restarted (process ${inventory.child.pid}) and healthy after ${restartMs} ms`);

  const sent = load.of('purchases', 'after kill').filter((s) => s.name === 'purchase');
  const answered = sent.filter((s) => s.status === 201).map(purchaseOf);
  const failed = sent.filter((s) => s.status === 'failed');
  const inHistory = await historyIds(db.pool);
  const committedUnanswered = inHistory.size - answered.length;
  load.log(
    `purchases sent ${sent.length}: ${answered.length} × 201, ${failed.length} cut by the kill ` +
      `(${[...new Set(failed.map((s) => s.detail))].join(', ')}), ` +
      `${sent.length - answered.length - failed.length} other; ${committedUnanswered} committed without an answer`,
  );

  expect(sent.filter((s) => typeof s.status === 'number' && s.status >= 500)).toEqual([]);
  expect(sent.filter((s) => s.problem !== undefined)).toEqual([]);
  expect(failed.length).toBeGreaterThan(0);
  expect(failed.length).toBeLessThanOrEqual(inFlightAtKill);
  // Nothing lost: every purchase answered 201 is in the history…
  expect(answered.filter((p) => !inHistory.has(p.id))).toEqual([]);
  // …and what the history holds beyond those was in flight when the process died.
  expect(committedUnanswered).toBeGreaterThanOrEqual(0);
  expect(committedUnanswered).toBeLessThanOrEqual(failed.length);

  let ledgers = await ledger(db.pool, initial);
  for (const l of ledgers)
    load.log(
      `product ${l.productoId}: stock ${l.stock} + sold ${l.sold} = ${l.stock + l.sold} (initial ${l.initial}), ${l.purchases} purchases, ${l.purchaseUpdates} inventory.updated`,
    );
  expect(ledgers).toHaveLength(PRODUCTS);
  expect(brokenLedgers(ledgers)).toEqual([]);
  const pairs = await unpairedPurchases(db.pool);
  load.log(
    `outbox: ${pairs.events} purchase.completed for ${inHistory.size} history rows; unpaired ${JSON.stringify(pairs)}`,
  );
  expect(pairs).toEqual({ historyWithoutEvent: 0, eventWithoutHistory: 0, events: inHistory.size });

  // The restarted process sells again, from the stock the killed one left.
  load.setPhase('after restart');
  await workers(
    4,
    () => true,
    40,
    () =>
      load.send('purchase', `${inventory.url}/api/purchases`, {
        method: 'POST',
        headers: jsonApiHeaders,
        body: purchaseBody(ids[Math.floor(Math.random() * ids.length)]!, 1),
      }),
  );
  const after = load.of('after restart');
  expect(after.map((s) => s.status)).toEqual(after.map(() => 201));
  ledgers = await ledger(db.pool, initial);
  expect(brokenLedgers(ledgers)).toEqual([]);
  expect((await unpairedPurchases(db.pool)).historyWithoutEvent).toBe(0);
  for (const line of load.summary()) load.log(line);
});
