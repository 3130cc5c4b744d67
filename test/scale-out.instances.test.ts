/**
 * The guarantees that must hold when each service runs as several instances behind a balancer, all
 * on one database: three Products instances and three Inventory instances, each on its own real
 * port, share one database per service. Nothing in a process may be what keeps the data right.
 *
 * - no oversell with buyers spread over every instance;
 * - an Idempotency-Key retried on another instance replays the first answer;
 * - a price changed through one Products instance is what every other instance serves, within a
 *   bound measured here (each instance's cache forgets on PostgreSQL notifications);
 * - one outbox relay delivers at a time: when the delivering instance dies mid-run another takes
 *   over, every event is delivered, a product's events stay in commit order, and nothing but the
 *   dead instance's unfinished batch is delivered twice;
 * - reservations expiring at once while all three instances sweep: each expires exactly once (one
 *   `reservation.expired` event, one `expiry` movement), and every unit is back.
 */
import type { App } from '@catalogo/kit/app';
import pino from 'pino';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp as buildInventory } from '../services/inventory/src/app.js';
import { loadConfig as loadInventoryConfig } from '../services/inventory/src/config.js';
import { ledgerMismatches } from '../services/inventory/src/stock/stock.repository.js';
import {
  API_KEY,
  FRESH_METRICS,
  historyOf,
  JSONAPI,
  purchaseBody,
  reservationBody,
  setBody,
  stockOf,
} from '../services/inventory/test/helpers.js';
import { buildApp as buildProducts } from '../services/products/src/app.js';
import { loadConfig as loadProductsConfig } from '../services/products/src/config.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const N = 3;
const agent = new Agent({ connections: 128 });
const silent = pino({ level: 'silent' });

interface Instance {
  app: App;
  url: string;
  alive: boolean;
}

/** A structured log line an Inventory instance wrote, with the instance that wrote it. */
interface LogLine {
  instance: number;
  at: number;
  msg: string;
  id?: string;
  expired?: number;
}

let productsDb: TestDatabase;
let inventoryDb: TestDatabase;
const products: Instance[] = [];
const inventory: Instance[] = [];
// One process, one thread: the order lines are pushed is the order the relays delivered in.
const log: LogLine[] = [];

/** A logger that keeps the lines an instance writes, tagged with that instance. */
function capturing(instance: number) {
  return pino(
    { level: 'info' },
    {
      write(line: string) {
        const { msg, id, expired } = JSON.parse(line) as { msg: string; id?: string; expired?: number };
        log.push({ instance, at: performance.now(), msg, id, expired });
      },
    },
  );
}

beforeAll(async () => {
  productsDb = await createTestDatabase('products');
  inventoryDb = await createTestDatabase('inventory');
  for (let i = 0; i < N; i++) {
    const app = await buildProducts(
      loadProductsConfig({ DATABASE_URL: productsDb.url, API_KEYS: API_KEY, ...FRESH_METRICS }),
      silent,
    );
    products.push({ app, url: await app.listen({ host: '127.0.0.1', port: 0 }), alive: true });
  }
  for (let i = 0; i < N; i++) {
    // Each instance names its sessions, so the test can tell which one holds the relay's lock.
    const url = new URL(inventoryDb.url);
    url.searchParams.set('application_name', `inventory-${i}`);
    const app = await buildInventory(
      loadInventoryConfig({
        DATABASE_URL: url.toString(),
        API_KEYS: API_KEY,
        // Each Inventory instance calls a different Products instance, as a balancer spreads them.
        PRODUCTS_URL: products[i]!.url,
        PRODUCTS_API_KEY: API_KEY,
        DATABASE_POOL_MAX: '6',
        OUTBOX_POLL_MS: '20',
        // Every instance sweeps for due reservations often, so that their sweeps overlap.
        RESERVATION_SWEEP_MS: '50',
        ...FRESH_METRICS,
      }),
      capturing(i),
    );
    inventory.push({ app, url: await app.listen({ host: '127.0.0.1', port: 0 }), alive: true });
  }
});

afterAll(async () => {
  for (const instance of [...inventory, ...products]) if (instance.alive) await instance.app.close();
  await agent.close();
  await inventoryDb?.drop();
  await productsDb?.drop();
});

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  extra: Record<string, string> = {},
) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'x-api-key': API_KEY, 'content-type': JSONAPI, ...extra },
    body: body === undefined ? undefined : JSON.stringify(body),
    dispatcher: agent,
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function createProduct(precio: number): Promise<number> {
  const res = await call(products[0]!.url, 'POST', '/api/products', {
    data: { type: 'products', attributes: { nombre: 'Producto repartido', precio } },
  });
  expect(res.status).toBe(201);
  return Number(JSON.parse(res.text).data.id);
}

async function setStock(id: number, cantidad: number): Promise<void> {
  expect(
    (await call(inventory[0]!.url, 'PATCH', `/api/inventory/${id}`, setBody(id, { cantidad }))).status,
  ).toBe(200);
}

describe('N = 3 instances per service on one database', () => {
  it('no oversell: 300 buyers spread over every Inventory instance buy exactly the stock', async () => {
    const id = await createProduct(2.5);
    await setStock(id, 50);
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        call(inventory[i % N]!.url, 'POST', '/api/purchases', purchaseBody(id, 1)),
      ),
    );
    const sold = outcomes.filter((o) => o.status === 201).length;
    const byInstance = [0, 1, 2].map(
      (n) => outcomes.filter((o, i) => i % N === n && o.status === 201).length,
    );
    console.log(
      `[scale-out] 300 buyers over ${N} instances, stock 50: ${sold} sold (${byInstance.join(' + ')})`,
    );
    expect(sold).toBe(50);
    expect(outcomes.filter((o) => o.status === 409)).toHaveLength(250);
    expect(byInstance.every((n) => n > 0)).toBe(true);
    expect(await stockOf(inventoryDb, id)).toBe(0);
    expect(await historyOf(inventoryDb, id)).toEqual({ rows: 50, units: 50 });
  });

  it('an Idempotency-Key retried on every other instance replays the first answer and buys once', async () => {
    const id = await createProduct(4);
    await setStock(id, 10);
    const key = { 'idempotency-key': `instances-${id}` };
    const first = await call(inventory[0]!.url, 'POST', '/api/purchases', purchaseBody(id, 3), key);
    expect(first.status).toBe(201);
    for (const instance of inventory.slice(1)) {
      const retry = await call(instance.url, 'POST', '/api/purchases', purchaseBody(id, 3), key);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.text).toBe(first.text);
    }
    // The same key sent to all three at once, on a fresh key: one purchase, never two.
    const racing = { 'idempotency-key': `instances-race-${id}` };
    const answers = await Promise.all(
      inventory.map((instance) => call(instance.url, 'POST', '/api/purchases', purchaseBody(id, 2), racing)),
    );
    expect(answers.filter((a) => a.status === 201).length).toBeGreaterThanOrEqual(1);
    expect(answers.every((a) => a.status === 201 || a.status === 409)).toBe(true);
    expect(await stockOf(inventoryDb, id)).toBe(5);
    expect(await historyOf(inventoryDb, id)).toEqual({ rows: 2, units: 5 });
  });

  it('a price changed through one Products instance is what every other instance serves, promptly', async () => {
    const id = await createProduct(10);
    const hits = async (instance: Instance) => {
      const metrics = await call(instance.url, 'GET', '/metrics');
      return Number(/product_cache_lookups_total\{result="hit"\} (\d+)/.exec(metrics.text)?.[1]);
    };
    const price = async (instance: Instance) =>
      JSON.parse((await call(instance.url, 'GET', `/api/products/${id}`)).text).data.attributes
        .precio as number;
    // Warm every cache, and prove the second read is served from it (so a stale copy could be served).
    for (const instance of products) {
      expect(await price(instance)).toBe(10);
      const before = await hits(instance);
      expect(await price(instance)).toBe(10);
      expect(await hits(instance)).toBe(before + 1);
    }

    const rounds: number[] = [];
    for (let round = 1; round <= 5; round++) {
      const writer = products[round % N]!;
      const readers = products.filter((p) => p !== writer);
      const precio = 10 + round;
      const patched = await call(writer.url, 'PATCH', `/api/products/${id}`, {
        data: { type: 'products', id: String(id), attributes: { precio } },
      });
      expect(patched.status).toBe(200);
      const changedAt = performance.now();
      // Each reader polls until it serves the new price; the slowest one is the convergence time.
      await Promise.all(
        readers.map(async (reader) => {
          const deadline = changedAt + 10_000;
          while ((await price(reader)) !== precio) {
            expect(performance.now()).toBeLessThan(deadline);
          }
        }),
      );
      rounds.push(performance.now() - changedAt);
      // Every instance serves the new price from its cache again afterwards.
      for (const instance of products) expect(await price(instance)).toBe(precio);
    }
    rounds.sort((a, b) => a - b);
    console.log(
      `[scale-out] cache convergence after a PATCH on another instance, 5 rounds: ` +
        `median ${rounds[2]!.toFixed(1)} ms, max ${rounds[4]!.toFixed(1)} ms`,
    );
  });

  it('reservations expiring at once while three instances sweep: each expires exactly once', async () => {
    const id = await createProduct(3);
    await setStock(id, 1_000);
    const sweptFrom = log.length;
    // Made 15 at a time, five on each instance, so that they all expire within a few hundred ms.
    const made: Awaited<ReturnType<typeof call>>[] = [];
    for (let batch = 0; batch < 10; batch++) {
      made.push(
        ...(await Promise.all(
          Array.from({ length: 15 }, (_, i) =>
            call(
              inventory[i % N]!.url,
              'POST',
              '/api/reservations',
              reservationBody([{ producto_id: id, cantidad: 2 }], 1),
            ),
          ),
        )),
      );
    }
    expect(made.filter((m) => m.status !== 201).map((m) => m.text)).toEqual([]);
    const ids = made.map((m) => Number(JSON.parse(m.text).data.id));
    const pool = inventoryDb.pool;
    await waitFor(
      async () =>
        (await pool.query(`SELECT 1 FROM reservas WHERE id = ANY($1) AND estado = 'activa'`, [ids]))
          .rowCount === 0,
    );

    const { rows: estados } = await pool.query<{ estado: string; n: number }>(
      'SELECT estado, count(*)::int AS n FROM reservas WHERE id = ANY($1) GROUP BY estado',
      [ids],
    );
    expect(estados).toEqual([{ estado: 'expirada', n: 150 }]);
    const { rows: events } = await pool.query<{ reservation: string; n: number }>(
      `SELECT data->>'reservation_id' AS reservation, count(*)::int AS n FROM outbox
        WHERE type = 'reservation.expired' AND data->>'reservation_id' = ANY($1::text[]) GROUP BY 1`,
      [ids.map(String)],
    );
    expect(events).toHaveLength(150);
    expect(events.filter((e) => e.n !== 1)).toEqual([]);
    const { rows: movements } = await pool.query<{ source: number; n: number; delta: number }>(
      `SELECT source_id AS source, count(*)::int AS n, sum(delta)::int AS delta FROM movimientos_inventario
        WHERE producto_id = $1 AND causa = 'expiry' GROUP BY source_id`,
      [id],
    );
    expect(movements.map((m) => m.source).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    expect(movements.filter((m) => m.n !== 1 || m.delta !== 2)).toEqual([]);
    const { rows: levels } = await pool.query(
      'SELECT cantidad, reservado FROM inventario WHERE producto_id = $1',
      [id],
    );
    expect(levels[0]).toEqual({ cantidad: 1_000, reservado: 0 });
    expect(await ledgerMismatches(pool)).toEqual([]);

    const sweeps = log.slice(sweptFrom).filter((l) => l.msg === 'reservations expired');
    const byInstance = [0, 1, 2].map((n) =>
      sweeps.filter((l) => l.instance === n).reduce((sum, l) => sum + l.expired!, 0),
    );
    console.log(
      `[scale-out] 150 reservations expiring at once, 3 sweepers every 50 ms: expired by instance ` +
        `${byInstance.join(' + ')} in ${sweeps.length} sweeps`,
    );
    expect(byInstance.reduce((a, b) => a + b, 0)).toBe(150);
  }, 60_000);

  it('one relay delivers at a time; killing it mid-run hands over with no gap and no reordering', async () => {
    const start = log.length;
    const ids = [await createProduct(1), await createProduct(1), await createProduct(1)];
    for (const id of ids) await setStock(id, 10_000);
    const events = () => log.slice(start).filter((l) => l.msg === 'event');

    // Purchases keep flowing over the instances still alive while the relays deliver them.
    let buying = true;
    let bought = 0;
    const buyers = Array.from({ length: 6 }, async (_, b) => {
      while (buying) {
        const alive = inventory.filter((i) => i.alive);
        const target = alive[(b + bought) % alive.length]!;
        const res = await call(target.url, 'POST', '/api/purchases', purchaseBody(ids[b % ids.length]!, 1));
        if (res.status === 201) bought += 1;
      }
    });

    // Throughout, at most one session holds the relay's lock.
    const pool = inventoryDb.pool;
    let holders = 0;
    let sampled = 0;
    const sampler = (async () => {
      while (buying) {
        const { rows } = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted`,
        );
        holders = Math.max(holders, rows[0]!.n);
        sampled += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    // Once the relays are at work, kill the instance that delivered last: in this one-threaded
    // process the last line logged is the latest delivery.
    await waitFor(() => events().length >= 30);
    const active = events().at(-1)!.instance;
    const victim = inventory[active]!;
    victim.alive = false;
    const killedAt = performance.now();
    // Its sessions end at once, as when its process dies: the batch in progress rolls back.
    await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [
      `inventory-${active}`,
    ]);
    const closing = victim.app.close().catch(() => undefined);

    await waitFor(() => events().some((e) => e.instance !== active && e.at > killedAt));
    const handOverMs = events().find((e) => e.instance !== active && e.at > killedAt)!.at - killedAt;
    await new Promise((resolve) => setTimeout(resolve, 500));
    buying = false;
    await Promise.all([...buyers, sampler]);
    await closing;
    await waitFor(
      async () => (await pool.query('SELECT 1 FROM outbox WHERE published_at IS NULL')).rowCount === 0,
    );

    const { rows: outbox } = await pool.query<{ id: string; seq: string; producto_id: number }>(
      'SELECT id, seq, producto_id FROM outbox WHERE producto_id = ANY($1) ORDER BY seq',
      [ids],
    );
    const delivered = events().filter((e) => outbox.some((o) => o.id === e.id));
    const times = new Map<string, LogLine[]>();
    for (const e of delivered) times.set(e.id!, [...(times.get(e.id!) ?? []), e]);
    const twice = [...times.values()].filter((d) => d.length > 1);
    console.log(
      `[scale-out] relay: ${outbox.length} events, ${bought} purchases; instance ${active} killed while ` +
        `delivering; first delivery by another instance ${handOverMs.toFixed(0)} ms later; ` +
        `${twice.length} re-delivered (the killed instance's unfinished batch); ` +
        `at most ${holders} relay lock holder in ${sampled} samples`,
    );

    // No gap: every event was delivered, and more than one instance delivered them.
    expect(outbox.length).toBeGreaterThan(bought);
    expect(outbox.filter((o) => !times.has(o.id))).toEqual([]);
    expect(new Set(delivered.map((e) => e.instance)).size).toBeGreaterThan(1);
    // No duplicate beyond the killed instance's batch that never committed: those it logged once,
    // a survivor delivered them once more, and nothing else twice.
    for (const d of twice) {
      expect(d).toHaveLength(2);
      expect(d[0]!.instance).toBe(active);
      expect(d[1]!.instance).not.toBe(active);
    }
    // A product's events, as first delivered, in commit (seq) order.
    const seqOf = new Map(outbox.map((o) => [o.id, BigInt(o.seq)]));
    for (const id of ids) {
      const mine = new Set(outbox.filter((o) => o.producto_id === id).map((o) => o.id));
      const order = [...times.keys()].filter((e) => mine.has(e)).map((e) => seqOf.get(e)!);
      expect(order).toEqual([...order].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    expect(holders).toBeLessThanOrEqual(1);
    expect(handOverMs).toBeLessThan(15_000);
  }, 90_000);
});

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
