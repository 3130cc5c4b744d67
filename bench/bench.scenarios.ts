import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createPool } from '@catalogo/kit/db';
import type pg from 'pg';
import pino from 'pino';
import { formatCents, purchaseTotal } from '../services/inventory/src/money.js';
import { placeOrder } from '../services/inventory/src/orders/orders.repository.js';
import { recordPurchase } from '../services/inventory/src/purchases/purchases.repository.js';
import type { CpuMeter } from './bench.cpu.js';
import { type HttpLoad, runHttp, runLoop, type Summary, summarize, Tally } from './bench.load.js';
import type { BenchOptions, ScenarioName } from './bench.options.js';
import { type RelaySummary, RelayTally, summarizeRelay, watchOutbox } from './bench.relay.js';
import { checkLedger, type Seed } from './bench.seed.js';
import { RESULTS_DIR, startChild } from './bench.system.js';

// The services run as in production, where a key must have at least 16 characters.
export const API_KEY = 'catalogo-bench-key';
const MEDIA_TYPE = 'application/vnd.api+json';
const PRODUCT_LIST_PATH = '/api/products?page[size]=20';

export interface System {
  productsUrl: string;
  inventoryUrl: string | undefined;
  /** `--via-gateway`: the targets go through it, the floors are the same load sent to the service. */
  gatewayUrl: string | undefined;
  inventoryDb: string;
  seed: Seed;
  /** The bench's own connection to the inventory database, for the ledger check. */
  inventoryPool: pg.Pool;
  cpu: CpuMeter;
}

/** One side of a comparison: driven for some seconds, its responses added to a tally. */
type Drive = (seconds: number, tally: Tally) => Promise<void>;

export interface ScenarioResult {
  name: ScenarioName;
  target: Summary;
  floor: Summary;
  /** Broken invariants found after the scenario (overselling); empty when none. */
  problems: string[];
  sold?: number;
  /** Purchase scenarios: the service's events and its relay during the target's measured runs. */
  relay?: RelaySummary;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/**
 * Warms both sides, then alternates them in ABBA order (target, floor, floor, target, ...), so a
 * machine that gets busier or quieter during the scenario weighs on both sides alike. `watchTarget`
 * wraps each measured run of the target, outside the CPU accounting.
 */
async function compare(
  options: BenchOptions,
  cpu: CpuMeter,
  target: Drive,
  floor: Drive,
  watchTarget: (run: () => Promise<void>) => Promise<void> = (run) => run(),
) {
  await target(options.warmup, new Tally());
  await floor(options.warmup, new Tally());
  const tallies = { target: new Tally(), floor: new Tally() };
  const slice = options.duration / options.rounds;
  for (let round = 0; round < options.rounds; round += 1) {
    const order = round % 2 === 0 ? (['target', 'floor'] as const) : (['floor', 'target'] as const);
    for (const side of order) {
      const run = async () => {
        const before = cpu.sample();
        await (side === 'target' ? target : floor)(slice, tallies[side]);
        tallies[side].addCpu(before, cpu.sample());
      };
      await (side === 'target' ? watchTarget(run) : run());
    }
  }
  return { target: summarize(tallies.target), floor: summarize(tallies.floor) };
}

const http =
  (load: HttpLoad): Drive =>
  (seconds, tally) =>
    runHttp(load, seconds, tally);

/** GETs against the Products service, and against a bare Fastify answering the same bytes. */
async function productScenario(
  name: ScenarioName,
  options: BenchOptions,
  system: System,
  paths: string[],
): Promise<ScenarioResult> {
  const responses: Record<string, string> = {};
  for (const path of paths) {
    const response = await fetch(`${system.productsUrl}${path}`, { headers: { 'x-api-key': API_KEY } });
    if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status} while seeding`);
    responses[path] = await response.text();
  }
  const load = (url: string): HttpLoad => ({
    url,
    connections: options.connections,
    headers: { 'x-api-key': API_KEY, accept: MEDIA_TYPE },
    method: 'GET',
    next: () => ({ path: pick(paths) }),
  });
  if (system.gatewayUrl) {
    const result = await compare(
      options,
      system.cpu,
      http(load(system.gatewayUrl)),
      http(load(system.productsUrl)),
    );
    return { name, ...result, problems: [] };
  }
  const file = join(RESULTS_DIR, `${name}.floor.json`);
  await writeFile(file, JSON.stringify(responses));
  const floorServer = await startChild(`${name}-floor`, 'bench/floor.server.ts', { FLOOR_RESPONSES: file });
  system.cpu.watch('floor server', floorServer.pid);
  try {
    const result = await compare(
      options,
      system.cpu,
      http(load(system.productsUrl)),
      http(load(floorServer.url)),
    );
    return { name, ...result, problems: [] };
  } finally {
    system.cpu.unwatch('floor server');
    await floorServer.stop();
  }
}

/**
 * What the scenarios that write share: each seeded product's price for one unit (what the floor
 * records), a pool of the floor's own as large as the service's, and the target: POSTs of `path` to
 * the Inventory service (through the gateway with `--via-gateway`), each with a body from `body()`.
 * `floor` picks the floor: the given SQL driven directly, or with `--via-gateway` the same POSTs sent
 * to the service itself.
 */
function writeScenario(
  name: ScenarioName,
  options: BenchOptions,
  system: System,
  path: string,
  body: () => unknown,
) {
  if (!system.inventoryUrl) throw new Error(`${name} needs the Inventory service`);
  const prices = new Map(system.seed.products.map((p) => [p.id, purchaseTotal(p.precio, 1)]));
  const pool = createPool(
    { connectionString: system.inventoryDb, max: options.poolMax, applicationName: 'bench-floor' },
    pino({ level: 'silent' }),
  );
  const load = (url: string): HttpLoad => ({
    url,
    connections: options.connections,
    headers: { 'x-api-key': API_KEY, 'content-type': MEDIA_TYPE, accept: MEDIA_TYPE },
    method: 'POST',
    next: () => ({ path, body: JSON.stringify(body()) }),
  });
  const inventoryUrl = system.inventoryUrl;
  const target = http(load(system.gatewayUrl ?? inventoryUrl));
  const floor = (sqlFloor: Drive): Drive => (system.gatewayUrl ? http(load(inventoryUrl)) : sqlFloor);
  return { prices, pool, target, floor };
}

/**
 * POST /api/purchases against the Inventory service, and the same SQL (`recordPurchase`, one
 * statement) driven straight through `pg` by as many workers as there are connections, with a pool
 * as large as the service's. Afterwards the books must balance: nothing oversold, nothing lost.
 */
async function purchaseScenario(
  name: ScenarioName,
  options: BenchOptions,
  system: System,
  productIds: number[],
): Promise<ScenarioResult> {
  const { prices, pool, target, floor } = writeScenario(name, options, system, '/api/purchases', () => ({
    data: { type: 'purchases', attributes: { producto_id: pick(productIds), cantidad: 1 } },
  }));
  try {
    const sqlFloor: Drive = (seconds, tally) =>
      runLoop(
        options.connections,
        async () => {
          const productoId = pick(productIds);
          const outcome = await recordPurchase(pool, { productoId, cantidad: 1, ...prices.get(productoId)! });
          return outcome.ok ? 201 : 409;
        },
        seconds,
        tally,
      );
    const relay = new RelayTally();
    const result = await compare(options, system.cpu, target, floor(sqlFloor), (run) =>
      watchOutbox(system.inventoryPool, relay, run),
    );
    const ledger = await checkLedger(system.inventoryPool, system.seed);
    return { name, ...result, problems: ledger.problems, sold: ledger.sold, relay: summarizeRelay(relay) };
  } finally {
    await pool.end();
  }
}

/** `count` distinct products picked at random. */
function pickDistinct(ids: readonly number[], count: number): number[] {
  const picked = new Set<number>();
  while (picked.size < count) picked.add(pick(ids));
  return [...picked];
}

/**
 * POST /api/orders of 3 lines (products random over the 1 000, 1 unit each) against the Inventory
 * service, and the same SQL (`placeOrder` imported from `orders.repository.ts`: one `registrar_pedido`
 * statement) driven straight through `pg`. Afterwards the books must balance.
 */
async function checkoutScenario(
  name: ScenarioName,
  options: BenchOptions,
  system: System,
): Promise<ScenarioResult> {
  const ids = system.seed.products.map((p) => p.id);
  const { prices, pool, target, floor } = writeScenario(name, options, system, '/api/orders', () => ({
    data: {
      type: 'orders',
      attributes: { lineas: pickDistinct(ids, 3).map((producto_id) => ({ producto_id, cantidad: 1 })) },
    },
  }));
  try {
    const sqlFloor: Drive = (seconds, tally) =>
      runLoop(
        options.connections,
        async () => {
          const lines = pickDistinct(ids, 3).map((productoId) => ({
            productoId,
            cantidad: 1,
            ...prices.get(productoId)!,
          }));
          const total = formatCents(lines.reduce((sum, line) => sum + line.cents, 0n));
          const placed = await placeOrder(pool, lines, total);
          return placed.ok ? 201 : 409;
        },
        seconds,
        tally,
      );
    const result = await compare(options, system.cpu, target, floor(sqlFloor));
    const ledger = await checkLedger(system.inventoryPool, system.seed);
    return { name, ...result, problems: ledger.problems, sold: ledger.sold };
  } finally {
    await pool.end();
  }
}

export function runScenario(
  name: ScenarioName,
  options: BenchOptions,
  system: System,
): Promise<ScenarioResult> {
  const ids = system.seed.products.map((p) => p.id);
  switch (name) {
    case 'product-read':
      return productScenario(
        name,
        options,
        system,
        ids.map((id) => `/api/products/${id}`),
      );
    case 'product-list':
      return productScenario(name, options, system, [PRODUCT_LIST_PATH]);
    case 'purchase-spread':
      return purchaseScenario(name, options, system, ids);
    case 'purchase-hot':
      return purchaseScenario(name, options, system, [ids[0]!]);
    case 'checkout':
      return checkoutScenario(name, options, system);
  }
}
