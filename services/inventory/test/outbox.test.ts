/**
 * The transactional outbox (docs/api.md §5): every stock change writes its events in its own
 * transaction, a refused change writes none, and the relay delivers each event once — also with
 * two relays (two instances) running at the same time.
 */
import { Writable } from 'node:stream';
import { ConfigError } from '@catalogo/kit/config';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { purgeExpired } from '../src/housekeeping.js';
import {
  type EventPublisher,
  OutOfOrderError,
  streamConfig,
  subjectOf,
} from '../src/outbox/outbox.publisher.js';
import { createOutboxRelay } from '../src/outbox/outbox.relay.js';
import type { OutboxEvent } from '../src/outbox/outbox.repository.js';
import { buildInventory, headers, purchaseBody, useInventoryApp } from './helpers.js';

const ctx = useInventoryApp({ OUTBOX_RELAY: 'off' });

/** A logger whose JSON lines are kept for the test to read. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

/**
 * A broker in memory that keeps JetStream's promises to the relay: an event it already holds is
 * acknowledged again without a second copy, and an event whose predecessor in the list is not the
 * last one it stored is refused. It can fail the n-th event it is sent.
 */
function recordingPublisher(options: { failOn?: number; delayMs?: number } = {}) {
  const published: OutboxEvent[] = [];
  const batches: number[] = [];
  let calls = 0;
  const publisher: EventPublisher = {
    ready: async () => {},
    publishInOrder: async (events) => {
      batches.push(events.length);
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      return events.map((event, index) => {
        calls += 1;
        if (calls === options.failOn) return new Error('broker refused');
        if (published.some((e) => e.id === event.id)) return undefined;
        if (index > 0 && published.at(-1)?.id !== events[index - 1]!.id)
          return new OutOfOrderError('not after its predecessor');
        published.push(event);
        return undefined;
      });
    },
    close: async () => {},
  };
  return { publisher, published, batches };
}

async function eventsOf(productoId: number) {
  const { rows } = await ctx
    .db()
    .pool.query<{ id: string; type: string; data: Record<string, unknown>; published: boolean }>(
      `SELECT id, type, data, published_at IS NOT NULL AS published FROM outbox
       WHERE producto_id = $1 ORDER BY seq`,
      [productoId],
    );
  return rows;
}

/** An `inventory.updated` payload: `cantidad` from → to, `reservado` unchanged at 0. */
const stockChange = (producto_id: number, [from, to]: [number, number], causa: string) => ({
  producto_id,
  cantidad_anterior: from,
  cantidad: to,
  reservado_anterior: 0,
  reservado: 0,
  causa,
});

async function drain(relay: { relayOnce: () => Promise<number> }) {
  while ((await relay.relayOnce()) > 0);
}

const inject = (
  method: 'PATCH' | 'POST',
  url: string,
  payload: unknown,
  extra: Record<string, string> = {},
) => ctx.app().inject({ method, url, headers: { ...headers, ...extra }, payload: JSON.stringify(payload) });

describe('events written with each change', () => {
  it('a set, an adjustment and a purchase write their events with the payloads of docs/api.md §5', async () => {
    const id = await ctx.createProduct(19.99);
    expect((await inject('PATCH', `/api/inventory/${id}`, setBody(id, 10))).statusCode).toBe(200);
    const adjusted = await inject('POST', `/api/inventory/${id}/adjustments`, adjustment(-3));
    expect(adjusted.statusCode).toBe(201);
    const bought = await inject('POST', '/api/purchases', purchaseBody(id, 2));
    expect(bought.statusCode).toBe(201);
    const purchaseId = bought.json().data.id;

    const events = await eventsOf(id);
    expect(events.map((e) => ({ type: e.type, data: e.data }))).toEqual([
      { type: 'inventory.updated', data: stockChange(id, [0, 10], 'set') },
      { type: 'inventory.updated', data: stockChange(id, [10, 7], 'adjustment') },
      { type: 'inventory.updated', data: stockChange(id, [7, 5], 'purchase') },
      {
        type: 'purchase.completed',
        data: {
          purchase_id: purchaseId,
          producto_id: id,
          cantidad: 2,
          precio_unitario: 19.99,
          total: 39.98,
          order_id: null,
        },
      },
    ]);
    expect(typeof purchaseId).toBe('string');
    for (const event of events) expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('totals are exact decimals (0.1 × 3 = 0.3), also for a purchase with an idempotency key', async () => {
    const id = await ctx.createProduct(0.1);
    await ctx.setStock(id, 5);
    const bought = await inject('POST', '/api/purchases', purchaseBody(id, 3), {
      'idempotency-key': `k-${id}`,
    });
    expect(bought.statusCode).toBe(201);
    const completed = (await eventsOf(id)).filter((e) => e.type === 'purchase.completed');
    expect(completed.map((e) => e.data)).toEqual([
      {
        purchase_id: bought.json().data.id,
        producto_id: id,
        cantidad: 3,
        precio_unitario: 0.1,
        total: 0.3,
        order_id: null,
      },
    ]);
    const replay = await inject('POST', '/api/purchases', purchaseBody(id, 3), {
      'idempotency-key': `k-${id}`,
    });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect((await eventsOf(id)).filter((e) => e.type === 'purchase.completed')).toHaveLength(1);
  });

  it('a refused change writes no event: 409 insufficient stock, 422 total too large, 409 adjustment', async () => {
    const cheap = await ctx.createProduct(5);
    await ctx.setStock(cheap, 2);
    const dear = await ctx.createProduct(99_999_999.99);
    await ctx.setStock(dear, 2);
    const before = [await eventsOf(cheap), await eventsOf(dear)];

    expect((await inject('POST', '/api/purchases', purchaseBody(cheap, 3))).statusCode).toBe(409);
    expect(
      (await inject('POST', '/api/purchases', purchaseBody(cheap, 3), { 'idempotency-key': `no-${cheap}` }))
        .statusCode,
    ).toBe(409);
    expect((await inject('POST', '/api/purchases', purchaseBody(dear, 2))).statusCode).toBe(422);
    expect((await inject('POST', `/api/inventory/${cheap}/adjustments`, adjustment(-5))).statusCode).toBe(
      409,
    );

    expect([await eventsOf(cheap), await eventsOf(dear)]).toEqual(before);
  });
});

describe('the relay', () => {
  it('logs each event once as a structured line, marks it delivered and counts it', async () => {
    const id = await ctx.createProduct(2);
    await ctx.setStock(id, 4);
    expect((await inject('POST', '/api/purchases', purchaseBody(id, 1))).statusCode).toBe(201);
    const { log, lines } = capturingLogger();
    const registry = new Registry();
    const relay = createOutboxRelay({ pool: ctx.db().pool, log, registry, pollMs: 50 });

    await drain(relay);
    expect(await relay.relayOnce()).toBe(0);

    const events = await eventsOf(id);
    expect(events.length).toBe(3);
    for (const event of events) {
      expect(event.published).toBe(true);
      const logged = lines.filter((line) => line.id === event.id);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: 30, event: event.type, data: event.data });
      expect(logged[0]!.occurred_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^outbox_pending 0$/m);
    const published = [...metrics.matchAll(/^outbox_published_total\{type="[a-z.]+"\} (\d+)$/gm)];
    expect(published.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(lines.filter((l) => l.event).length);
  });

  it('reports the backlog and the age of its oldest event at scrape time', async () => {
    const pool = ctx.db().pool;
    const registry = new Registry();
    const relay = createOutboxRelay({ pool, log: pino({ level: 'silent' }), registry, pollMs: 50 });
    const gauge = async (name: string) =>
      Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(await registry.metrics())?.[1]);
    await drain(relay);
    expect(await gauge('outbox_pending')).toBe(0);
    expect(await gauge('outbox_oldest_pending_age_seconds')).toBe(0);

    await pool.query(
      `INSERT INTO outbox (type, producto_id, data, occurred_at)
       VALUES ('inventory.updated', 1999998, '{}', now() - interval '30 seconds'),
              ('inventory.updated', 1999998, '{}', now())`,
    );
    expect(await gauge('outbox_pending')).toBe(2);
    const age = await gauge('outbox_oldest_pending_age_seconds');
    expect(age).toBeGreaterThanOrEqual(30);
    expect(age).toBeLessThan(300);
    await drain(relay);
    expect(await gauge('outbox_pending')).toBe(0);
  });

  it('publishes a batch with no transaction open, under the relay lock, and marks it with one statement', async () => {
    const pool = ctx.db().pool;
    const silent = pino({ level: 'silent' });
    await drain(createOutboxRelay({ pool, log: silent, pollMs: 50 }));
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO outbox (type, producto_id, data)
       SELECT 'inventory.updated', 1999997, jsonb_build_object('n', n) FROM generate_series(1, 30) AS n
       RETURNING id`,
    );
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let published = (_: number) => {};
    const inFlight = new Promise<number>((resolve) => {
      published = resolve;
    });
    const broker: EventPublisher = {
      ready: async () => {},
      publishInOrder: async (events) => {
        published(events.length);
        await gate;
        return events.map(() => undefined);
      },
      close: async () => {},
    };
    const relayLocks = async () =>
      (
        await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks
           WHERE locktype = 'advisory' AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )
      ).rows[0]!.n;
    const relay = createOutboxRelay({ pool, log: silent, publisher: broker, pollMs: 50 });
    const delivering = relay.relayOnce();
    // All 30 sent together, and while their acknowledgements are awaited:
    expect(await inFlight).toBe(30);
    const open = await pool.query(
      `SELECT pid, state FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`,
    );
    expect(open.rows).toEqual([]);
    expect(await relayLocks()).toBe(1);
    const other = recordingPublisher();
    expect(
      await createOutboxRelay({ pool, log: silent, publisher: other.publisher, pollMs: 50 }).relayOnce(),
    ).toBe(0);
    release();
    expect(await delivering).toBe(30);
    expect(other.published).toEqual([]);
    const marks = await pool.query<{ n: number }>(
      'SELECT count(DISTINCT published_at)::int AS n FROM outbox WHERE id = ANY($1::uuid[])',
      [rows.map((r) => r.id)],
    );
    expect(marks.rows[0]!.n).toBe(1);
    // The backlog was read to its end: the lock is free for any instance.
    expect(await relayLocks()).toBe(0);
  });

  it('carries on at once when a batch is cut short by events the broker already held', async () => {
    const pool = ctx.db().pool;
    const { log, lines } = capturingLogger();
    await drain(createOutboxRelay({ pool, log: pino({ level: 'silent' }), pollMs: 50 }));
    await pool.query(
      `INSERT INTO outbox (type, producto_id, data)
       SELECT 'inventory.updated', 1999996, jsonb_build_object('n', n) FROM generate_series(1, 4) AS n`,
    );
    const events = (await eventsOf(1999996)).map((e) => ({ ...e, occurred_at: '', data: e.data }));
    const broker = recordingPublisher();
    // A relay published the first two and died before marking them; something else came after.
    const foreign = { id: 'foreign', type: 'other', occurred_at: '', data: {} };
    broker.published.push(events[0]!, events[1]!, foreign);
    const relay = createOutboxRelay({ pool, log, publisher: broker.publisher, pollMs: 50 });
    expect(await relay.relayOnce()).toBe(2);
    expect(await relay.relayOnce()).toBe(2);
    expect(await relay.relayOnce()).toBe(0);
    expect(broker.published.map((e) => e.id)).toEqual([
      events[0]!.id,
      events[1]!.id,
      'foreign',
      events[2]!.id,
      events[3]!.id,
    ]);
    expect(lines.filter((line) => (line.level as number) >= 40)).toEqual([]);
    expect((await eventsOf(1999996)).every((e) => e.published)).toBe(true);
  });

  it('delivers in seq order and, when a publish fails, keeps what was acked and resumes at the failure', async () => {
    const id = await ctx.createProduct(1);
    for (let i = 1; i <= 6; i++) await ctx.setStock(id, i);
    const expected = (await eventsOf(id)).map((e) => e.id);
    // Everything pending before ours (from earlier tests) is delivered first.
    const failing = recordingPublisher({ failOn: 4 });
    const silent = pino({ level: 'silent' });
    const relay = createOutboxRelay({
      pool: ctx.db().pool,
      log: silent,
      publisher: failing.publisher,
      pollMs: 50,
    });
    await expect(drain(relay)).rejects.toThrow('broker refused');
    const acked = failing.published.map((e) => e.id);
    expect(acked).toHaveLength(3);
    const marked = (
      await ctx.db().pool.query(`SELECT id FROM outbox WHERE published_at IS NOT NULL`)
    ).rows.map((r) => r.id);
    expect(marked).toEqual(expect.arrayContaining(acked));

    const healthy = recordingPublisher();
    await drain(
      createOutboxRelay({ pool: ctx.db().pool, log: silent, publisher: healthy.publisher, pollMs: 50 }),
    );
    const all = [...acked, ...healthy.published.map((e) => e.id)];
    expect(new Set(all).size).toBe(all.length);
    expect(all.filter((eventId) => expected.includes(eventId))).toEqual(expected);
  });

  it('two relays running at once deliver every event exactly once, each in seq order', async () => {
    const pool = ctx.db().pool;
    await drain(createOutboxRelay({ pool, log: pino({ level: 'silent' }), pollMs: 50 }));
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO outbox (type, producto_id, data)
       SELECT 'inventory.updated', 1000000 + n % 7,
              jsonb_build_object('producto_id', 1000000 + n % 7, 'cantidad_anterior', n, 'cantidad', n + 1,
                                 'causa', 'adjustment')
       FROM generate_series(1, 400) AS n
       RETURNING id`,
    );
    const a = recordingPublisher({ delayMs: 1 });
    const b = recordingPublisher({ delayMs: 1 });
    const silent = pino({ level: 'silent' });
    const relays = [a, b].map((p) =>
      createOutboxRelay({ pool, log: silent, publisher: p.publisher, pollMs: 10, batchSize: 25 }),
    );
    // Both relays poll until the backlog is gone, as two instances would.
    await Promise.all(
      relays.map(async (relay) => {
        for (let idle = 0; idle < 3; ) {
          idle = (await relay.relayOnce()) === 0 ? idle + 1 : 0;
          await new Promise((r) => setTimeout(r, 5));
        }
      }),
    );
    const delivered = [...a.published, ...b.published].map((e) => e.id);
    expect(delivered.length).toBe(rows.length);
    expect(new Set(delivered)).toEqual(new Set(rows.map((r) => r.id)));
    for (const relay of [a, b]) {
      const seqs = relay.published.map((e) => Number(e.data.cantidad_anterior));
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
  });

  it('runs in the app, delivers while it runs and stops with it', async () => {
    const { log, lines } = capturingLogger();
    const app = await buildInventory(ctx.db().url, ctx.products().url, { OUTBOX_POLL_MS: '20' });
    try {
      const id = await ctx.createProduct(3);
      await ctx.setStock(id, 2);
      const res = await app.inject({
        method: 'POST',
        url: '/api/purchases',
        headers,
        payload: JSON.stringify(purchaseBody(id, 1)),
      });
      expect(res.statusCode).toBe(201);
      await expect
        .poll(async () => (await eventsOf(id)).every((e) => e.published), { timeout: 5_000 })
        .toBe(true);
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/^outbox_pending\{service="inventory"\} \d+$/m);
      expect(metrics).toMatch(
        /^outbox_published_total\{type="purchase.completed",service="inventory"\} [1-9]/m,
      );
    } finally {
      await app.close();
    }
    // A relay that never reaches its broker stops without sitting out its backoff (a minute here).
    const stuck = createOutboxRelay({
      pool: ctx.db().pool,
      log,
      pollMs: 30_000,
      maxBackoffMs: 60_000,
      publisher: {
        ready: () => Promise.reject(new Error('NATS down')),
        publishInOrder: () => Promise.reject(new Error('unreachable')),
        close: async () => {},
      },
    });
    await ctx.setStock(await ctx.createProduct(1), 1);
    stuck.start();
    await expect
      .poll(() => lines.some((l) => l.msg === 'outbox relay could not deliver; retrying'))
      .toBe(true);
    const started = Date.now();
    await stuck.stop();
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('configuration', () => {
  const base = { DATABASE_URL: 'postgres://u@h/db' };

  it('defaults: relay on every 200 ms, a week of retention, stream INVENTORY on inventory.>', () => {
    const config = loadConfig(base);
    expect(config.outbox).toEqual({ relay: true, pollMs: 200, retentionHours: 168 });
    expect(config.nats).toEqual({ url: undefined, stream: 'INVENTORY', subjectPrefix: 'inventory' });
    expect(streamConfig(config.nats)).toMatchObject({
      name: 'INVENTORY',
      subjects: ['inventory.>'],
      duplicate_window: 120_000_000_000,
    });
    expect(subjectOf('inventory', 'purchase.completed')).toBe('inventory.purchase.completed');
    expect(subjectOf('inventory', 'inventory.updated')).toBe('inventory.updated');
  });

  it('reads every variable and refuses values it cannot use', () => {
    const config = loadConfig({
      ...base,
      NATS_URL: 'nats://a:4222,nats://b:4222',
      NATS_STREAM: 'EVENTS_2',
      NATS_SUBJECT_PREFIX: 'shop.inventory',
      OUTBOX_RELAY: 'off',
      OUTBOX_POLL_MS: '50',
      OUTBOX_RETENTION_HOURS: '24',
    });
    expect(config.nats).toEqual({
      url: 'nats://a:4222,nats://b:4222',
      stream: 'EVENTS_2',
      subjectPrefix: 'shop.inventory',
    });
    expect(config.outbox).toEqual({ relay: false, pollMs: 50, retentionHours: 24 });
    expect(subjectOf('shop.inventory', 'inventory.updated')).toBe('shop.inventory.updated');
    let error: unknown;
    try {
      loadConfig({ ...base, OUTBOX_RELAY: 'maybe', NATS_STREAM: 'A.B', NATS_SUBJECT_PREFIX: 'a.>' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['OUTBOX_RELAY', 'NATS_STREAM', 'NATS_SUBJECT_PREFIX'])
      expect(problems).toContain(name);
  });
});

describe('retention', () => {
  it('purges delivered events past the retention, never undelivered ones', async () => {
    const pool = ctx.db().pool;
    const { rows } = await pool.query<{ id: string; label: string }>(
      `INSERT INTO outbox (type, producto_id, data, occurred_at, published_at)
       VALUES ('inventory.updated', 1999999, '{}', now() - interval '200 hours', now() - interval '169 hours'),
              ('inventory.updated', 1999999, '{}', now() - interval '200 hours', now() - interval '167 hours'),
              ('inventory.updated', 1999999, '{}', now() - interval '200 hours', NULL)
       RETURNING id, CASE WHEN published_at IS NULL THEN 'pending'
                          WHEN published_at < now() - interval '168 hours' THEN 'old' ELSE 'recent' END AS label`,
    );
    await purgeExpired({
      pool,
      log: pino({ level: 'silent' }),
      idempotencyTtlHours: 24,
      outboxRetentionHours: 168,
    });
    const left = await pool.query<{ id: string }>(`SELECT id FROM outbox WHERE producto_id = 1999999`);
    expect(new Set(left.rows.map((r) => r.id))).toEqual(
      new Set(rows.filter((r) => r.label !== 'old').map((r) => r.id)),
    );
  });
});

function setBody(id: number, cantidad: number) {
  return { data: { type: 'inventories', id: String(id), attributes: { cantidad } } };
}

function adjustment(delta: number) {
  return { data: { type: 'inventory-adjustments', attributes: { delta } } };
}
