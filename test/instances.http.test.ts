/**
 * `npm start -- --instances 3` as it runs: the runner starts three instances of each service (node
 * cluster workers sharing each service's port), and the concurrency and idempotency guarantees are
 * checked over plain HTTP against those two ports, as a client meets them:
 *
 * - every instance answers, and names itself in `X-Instance-Id` and in its log lines;
 * - 1 000 concurrent buyers of 100 units: exactly 100 sold, every answer 201 or 409;
 * - an Idempotency-Key retried on connections the balancer hands to other instances replays the
 *   first answer, and the same key sent at once through several buys once;
 * - orders racing purchases, and reservations racing purchases, for the same units;
 * - afterwards the books of every product, and the ledger audit (`npm run audit:ledger`), hold;
 * - Ctrl-C stops the runner with exit code 0 and leaves no primary nor worker behind.
 *
 * The services use the test databases (PRODUCTS_DATABASE_URL, INVENTORY_DATABASE_URL), so no second
 * PostgreSQL starts. Deadlines are generous: on a busy machine a burst of 1 000 purchases may take
 * longer than the default 10 s, and this suite checks what is sold, not how fast.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  API_KEY,
  expectBooks,
  expectLedgerBalanced,
  historyOf,
  JSONAPI,
  orderBody,
  purchaseBody,
  reservationBody,
  setBody,
  stockOf,
} from '../services/inventory/test/helpers.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const N = 3;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });

let productsDb: TestDatabase;
let inventoryDb: TestDatabase;
let runner: ChildProcess;
let output = '';
let exited: Promise<number | null>;
let products: string;
let inventory: string;
// Keep-alive connections for the bursts, enough that a burst is in flight at once.
const agent = new Agent({ connections: 256 });

beforeAll(async () => {
  productsDb = await createTestDatabase('products');
  inventoryDb = await createTestDatabase('inventory');
  const ports = { products: await freePort(), inventory: await freePort() };
  products = `http://127.0.0.1:${ports.products}`;
  inventory = `http://127.0.0.1:${ports.inventory}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PRODUCTS_DATABASE_URL: productsDb.url,
    INVENTORY_DATABASE_URL: inventoryDb.url,
    PRODUCTS_PORT: String(ports.products),
    INVENTORY_PORT: String(ports.inventory),
    API_KEYS: API_KEY,
    LOG_LEVEL: 'info',
    DATABASE_POOL_MAX: '6',
    REQUEST_TIMEOUT_MS: '60000',
    DATABASE_POOL_TIMEOUT_MS: '30000',
    DATABASE_STATEMENT_TIMEOUT_MS: '30000',
    DATABASE_LOCK_TIMEOUT_MS: '20000',
    PRODUCTS_TIMEOUT_MS: '20000',
    RESERVATION_SWEEP_MS: '200',
  };
  for (const name of ['NATS_URL', 'PRODUCTS_API_KEY', 'INVENTORY_DATABASE_READ_URL', 'CATALOGO_DATA_DIR'])
    delete env[name];
  runner = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts', '--instances', String(N)], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, as in a terminal, for the Ctrl-C at the end.
    detached: true,
  });
  runner.stdout?.on('data', (chunk) => (output += chunk));
  runner.stderr?.on('data', (chunk) => (output += chunk));
  exited = new Promise((resolve) => runner.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 230_000;
  while (!/"msg":"ready in/.test(output)) {
    if (runner.exitCode !== null || Date.now() > deadline)
      throw new Error(`npm start --instances ${N} did not become ready:\n${output}`);
    await sleep(200);
  }
}, 240_000);

afterAll(async () => {
  if (runner?.exitCode === null) process.kill(-runner.pid!, 'SIGKILL');
  await agent.close();
  await inventoryDb?.drop();
  await productsDb?.drop();
});

interface Answer {
  status: number;
  instance: string | null;
  text: string;
  headers: { get(name: string): string | null };
}

/**
 * A request with the test key. `fresh` sends it on a connection of its own, which the cluster's
 * balancer hands to the next instance in turn; otherwise on the shared keep-alive connections.
 */
async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  extra: Record<string, string> = {},
  fresh = false,
): Promise<Answer> {
  const dispatcher = fresh ? new Agent({ connections: 1 }) : agent;
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'x-api-key': API_KEY, 'content-type': JSONAPI, ...extra },
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher,
    });
    const text = await res.text();
    return { status: res.status, instance: res.headers.get('x-instance-id'), text, headers: res.headers };
  } finally {
    if (fresh) await dispatcher.close();
  }
}

async function createProduct(precio: number): Promise<number> {
  const res = await call(products, 'POST', '/api/products', {
    data: { type: 'products', attributes: { nombre: 'Producto en tres instancias', precio } },
  });
  expect(res.status, res.text).toBe(201);
  return Number(JSON.parse(res.text).data.id);
}

async function stocked(cantidad: number): Promise<number> {
  const id = await createProduct(3.5);
  const res = await call(inventory, 'PATCH', `/api/inventory/${id}`, setBody(id, { cantidad }));
  expect(res.status, res.text).toBe(200);
  return id;
}

const statusesOutside = (answers: Answer[], allowed: number[]) =>
  answers.filter((a) => !allowed.includes(a.status)).map((a) => `${a.status} ${a.text}`);

describe(`npm start -- --instances ${N}, over HTTP`, () => {
  it('every instance of each service answers, naming itself in X-Instance-Id and in its log lines', async () => {
    for (const base of [products, inventory]) {
      const seen = new Set<string | null>();
      for (let i = 0; i < 4 * N && seen.size < N; i++) {
        const res = await call(base, 'GET', '/health', undefined, {}, true);
        expect(res.status).toBe(200);
        seen.add(res.instance);
      }
      expect(seen.size, base).toBe(N);
      expect(seen.has(null)).toBe(false);
    }
    // Errors name their instance too, and the log line of a request is found by its id.
    const requestId = `instances-${Date.now()}`;
    const missing = await call(inventory, 'GET', '/api/purchases/999999', undefined, {
      'x-request-id': requestId,
    });
    expect(missing.status).toBe(404);
    expect(missing.instance).toMatch(/\S+-\d+$/);
    await expect
      .poll(() =>
        output
          .split('\n')
          .filter((line) => line.includes(`"reqId":"${requestId}"`) && line.includes('request completed'))
          .map((line) => JSON.parse(line).instance),
      )
      .toEqual([missing.instance]);
  });

  it('1 000 concurrent buyers of 100 units over three instances: exactly 100 sold, each 201 or 409', async () => {
    const id = await stocked(100);
    const answers = await Promise.all(
      Array.from({ length: 1_000 }, () => call(inventory, 'POST', '/api/purchases', purchaseBody(id, 1))),
    );
    const sold = answers.filter((a) => a.status === 201);
    const byInstance = new Map<string | null, number>();
    for (const a of sold) byInstance.set(a.instance, (byInstance.get(a.instance) ?? 0) + 1);
    console.log(
      `[instances.http] 1000 buyers, stock 100: ${sold.length} sold, by instance ${[...byInstance.values()].join(' + ')}`,
    );
    expect(statusesOutside(answers, [201, 409])).toEqual([]);
    expect(sold).toHaveLength(100);
    expect(new Set(answers.map((a) => a.instance)).size).toBe(N);
    expect(await stockOf(inventoryDb, id)).toBe(0);
    expect(await historyOf(inventoryDb, id)).toEqual({ rows: 100, units: 100 });
    await expectBooks(inventoryDb, id, 100);
  }, 120_000);

  it('an Idempotency-Key retried through other instances replays the first answer and buys once', async () => {
    const id = await stocked(10);
    const key = { 'idempotency-key': `instances-http-${id}` };
    const first = await call(inventory, 'POST', '/api/purchases', purchaseBody(id, 3), key, true);
    expect(first.status, first.text).toBe(201);
    const others = new Set<string>();
    for (let i = 0; i < 6 * N && others.size < N - 1; i++) {
      const retry = await call(inventory, 'POST', '/api/purchases', purchaseBody(id, 3), key, true);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.text).toBe(first.text);
      if (retry.instance !== first.instance) others.add(retry.instance!);
    }
    expect(others.size).toBe(N - 1);
    // A fresh key sent through every instance at once: one purchase, the others 201 replays or 409.
    const racing = { 'idempotency-key': `instances-http-race-${id}` };
    const answers = await Promise.all(
      Array.from({ length: 2 * N }, () =>
        call(inventory, 'POST', '/api/purchases', purchaseBody(id, 2), racing, true),
      ),
    );
    expect(statusesOutside(answers, [201, 409])).toEqual([]);
    expect(answers.filter((a) => a.status === 201).length).toBeGreaterThanOrEqual(1);
    expect(new Set(answers.map((a) => a.instance)).size).toBe(N);
    expect(await stockOf(inventoryDb, id)).toBe(5);
    expect(await historyOf(inventoryDb, id)).toEqual({ rows: 2, units: 5 });
  }, 60_000);

  it('orders racing purchases for the same units never sell more than the stock', async () => {
    const [a, b] = [await stocked(20), await stocked(20)];
    // 40 two-line orders among 10 purchases of each product: the purchases leave at least 10 units
    // of each, so both kinds win some, and the orders then take what is left of one product.
    const kinds = Array.from({ length: 60 }, (_, i) => (i % 6 === 1 ? a : i % 6 === 4 ? b : 0));
    const answers = await Promise.all(
      kinds.map((kind) =>
        kind === 0
          ? call(
              inventory,
              'POST',
              '/api/orders',
              orderBody([
                { producto_id: a, cantidad: 1 },
                { producto_id: b, cantidad: 1 },
              ]),
            )
          : call(inventory, 'POST', '/api/purchases', purchaseBody(kind, 1)),
      ),
    );
    const won = (kind: number) => answers.filter((x, i) => kinds[i] === kind && x.status === 201).length;
    console.log(
      `[instances.http] 40 orders (2 lines) racing 10 + 10 purchases for 20 + 20 units: ` +
        `${won(0)} orders, ${won(a)} + ${won(b)} purchases`,
    );
    expect(statusesOutside(answers, [201, 409])).toEqual([]);
    expect(won(0)).toBeGreaterThanOrEqual(10);
    const left = [await stockOf(inventoryDb, a), await stockOf(inventoryDb, b)];
    expect(left).toEqual([20 - won(0) - won(a), 20 - won(0) - won(b)]);
    expect(Math.min(...(left as number[]))).toBe(0);
    for (const id of [a, b]) await expectBooks(inventoryDb, id, 20);
  }, 60_000);

  it('reservations racing purchases for the last units never hold and sell more than the stock', async () => {
    const id = await stocked(10);
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        i % 2 === 0
          ? call(inventory, 'POST', '/api/reservations', reservationBody([{ producto_id: id, cantidad: 1 }]))
          : call(inventory, 'POST', '/api/purchases', purchaseBody(id, 1)),
      ),
    );
    expect(statusesOutside(answers, [201, 409])).toEqual([]);
    expect(answers.filter((a) => a.status === 201)).toHaveLength(10);
    const { rows } = await inventoryDb.pool.query(
      'SELECT cantidad, reservado FROM inventario WHERE producto_id = $1',
      [id],
    );
    expect(rows[0].cantidad).toBe(0);
    await expectBooks(inventoryDb, id, 10);
  }, 60_000);

  it('afterwards the ledger audit passes, and Ctrl-C stops every process with exit code 0', async () => {
    await expectLedgerBalanced(inventoryDb);
    const audit = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', 'services/inventory/src/audit-ledger.ts'],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: inventoryDb.url } },
    );
    expect(audit.stdout).toMatch(/^Libro de stock correcto: \d+ productos/);

    // Every process the runner started: the two cluster primaries and their workers.
    const pids = new Set(
      output
        .split('\n')
        .filter((line) => /"msg":"(instance listening|starting \d+ instances)"/.test(line))
        .map((line) => JSON.parse(line) as { worker?: number; instance: string })
        .map((line) => line.worker ?? Number(line.instance.split('-').at(-1))),
    );
    expect(pids.size).toBe(2 * (N + 1));
    // Ctrl-C in a terminal: SIGINT to the runner's process group (the services have groups of their own).
    process.kill(-runner.pid!, 'SIGINT');
    expect(await Promise.race([exited, sleep(60_000, 'timeout')]), output.slice(-3_000)).toBe(0);
    for (const pid of pids) expect(isAlive(pid), `process ${pid}`).toBe(false);
    await expect(fetch(`${inventory}/health`)).rejects.toThrow();
  }, 90_000);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
