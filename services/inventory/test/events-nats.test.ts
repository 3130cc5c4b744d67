/**
 * Events through a real NATS JetStream (docs/api.md §5): every committed purchase reaches the stream
 * exactly once — a relay that dies between publishing and marking re-publishes, and JetStream drops
 * the copy by its Nats-Msg-Id — and a NATS outage delays events without failing a purchase.
 *
 * Needs NATS at NATS_URL (CI exports nats://127.0.0.1:4222); the outage test starts its own
 * `nats-server` and needs only the binary. Without them these tests are skipped, never failed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@catalogo/kit/app';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { createNatsPublisher } from '../src/outbox/outbox.publisher.js';
import { createOutboxRelay } from '../src/outbox/outbox.relay.js';
import {
  buildInventory,
  createProductIn,
  headers,
  purchaseBody,
  setStockIn,
  startProducts,
} from './helpers.js';

const NATS_URL = process.env.NATS_URL;
const silent = pino({ level: 'silent' });

/** Whether a NATS with JetStream answers at `url` within a second. */
async function natsAnswers(url: string | undefined): Promise<boolean> {
  if (!url) return false;
  try {
    const nc = await connect({ servers: url, timeout: 1_000, maxReconnectAttempts: 0 });
    try {
      await jetstreamManager(nc);
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

const hasNats = await natsAnswers(NATS_URL);
const noNats =
  `no NATS with JetStream answers at NATS_URL (${NATS_URL ?? 'unset'}); ` +
  'set NATS_URL=nats://127.0.0.1:4222 to run them';
if (!hasNats) console.log(`[events-nats] SKIPPED the JetStream delivery tests: ${noNats}`);
const natsServerBinary = spawnSync('nats-server', ['--version']).status === 0;
const noBinary = 'the nats-server binary is not on PATH';
if (!natsServerBinary) console.log(`[events-nats] SKIPPED the NATS outage test: ${noBinary}`);
/** A suite's name, which says why when it is skipped (reporters list skipped suites by name). */
const titled = (name: string, runs: boolean, why: string) => (runs ? name : `${name} — skipped: ${why}`);

interface Envelope {
  id: string;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
}

interface Received {
  subject: string;
  msgId: string | undefined;
  event: Envelope;
}

/** Every message the stream holds, in stream order. */
async function readStream(nc: NatsConnection, stream: string): Promise<Received[]> {
  const { state } = await (await jetstreamManager(nc)).streams.info(stream);
  const received: Received[] = [];
  if (state.messages === 0) return received;
  const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  for await (const m of messages) {
    received.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), event: m.json<Envelope>() });
    if (received.length === state.messages) break;
  }
  return received;
}

const unique = () => randomBytes(4).toString('hex');

async function pendingIn(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
  );
  return rows[0]!.n;
}

async function buyMany(app: App, id: number, n: number): Promise<string[]> {
  const responses = await Promise.all(
    Array.from({ length: n }, () =>
      app.inject({
        method: 'POST',
        url: '/api/purchases',
        headers,
        payload: JSON.stringify(purchaseBody(id, 1)),
      }),
    ),
  );
  for (const res of responses) expect(res.statusCode, res.body).toBe(201);
  return responses.map((res) => res.json().data.id as string);
}

/** The purchase.completed events of `received`, checked against the purchases made. */
function expectExactlyThePurchases(
  received: Received[],
  prefix: string,
  purchaseIds: string[],
  precio: number,
) {
  const completed = received.filter((r) => r.event.type === 'purchase.completed');
  expect(completed).toHaveLength(purchaseIds.length);
  expect(new Set(completed.map((r) => r.event.data.purchase_id))).toEqual(new Set(purchaseIds));
  for (const { subject, msgId, event } of completed) {
    expect(subject).toBe(`${prefix}.purchase.completed`);
    expect(msgId).toBe(event.id);
    expect(Object.keys(event).sort()).toEqual(['data', 'id', 'occurred_at', 'type']);
    expect(event.data).toMatchObject({ cantidad: 1, precio_unitario: precio, total: precio });
    expect(typeof event.data.producto_id).toBe('number');
  }
}

describe.skipIf(!hasNats)(titled('JetStream delivery (NATS at NATS_URL)', hasNats, noNats), () => {
  const url = NATS_URL as string;
  let nc: NatsConnection;
  let products: Awaited<ReturnType<typeof startProducts>>;
  const streams: string[] = [];

  beforeAll(async () => {
    nc = await connect({ servers: url });
    products = await startProducts();
  });

  afterAll(async () => {
    const jsm = await jetstreamManager(nc);
    for (const stream of streams) await jsm.streams.delete(stream).catch(() => undefined);
    await nc?.close();
    await products?.close();
  });

  it('N purchases put exactly N purchase.completed events in the stream, with their stock events in order', async () => {
    const stream = `TEST_EVENTS_${unique()}`;
    const prefix = `test_${unique()}`;
    streams.push(stream);
    const db = await createTestDatabase('inventory');
    const app = await buildInventory(db.url, products.url, {
      NATS_URL: url,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: prefix,
      OUTBOX_POLL_MS: '20',
    });
    try {
      const id = await createProductIn(products.app, 4.25);
      await setStockIn(app, id, 100);
      const purchaseIds = await buyMany(app, id, 25);
      await expect.poll(() => pendingIn(db), { timeout: 15_000 }).toBe(0);

      const received = await readStream(nc, stream);
      expect(received).toHaveLength(25 + 26);
      expectExactlyThePurchases(received, prefix, purchaseIds, 4.25);

      const { rows } = await db.pool.query<{ id: string }>('SELECT id FROM outbox ORDER BY seq');
      expect(received.map((r) => r.event.id)).toEqual(rows.map((r) => r.id));
      // Per product, the stream order is commit order: each change starts where the last one ended.
      const stock = received.filter((r) => r.event.type === 'inventory.updated');
      let cantidad = 0;
      for (const { subject, event } of stock) {
        expect(subject).toBe(`${prefix}.updated`);
        expect(event.data.cantidad_anterior).toBe(cantidad);
        cantidad = event.data.cantidad as number;
      }
      expect(cantidad).toBe(75);
    } finally {
      await app.close();
      await db.drop();
    }
  });

  it('a relay killed between publishing and marking re-publishes, and the stream keeps one copy', async () => {
    const stream = `TEST_EVENTS_${unique()}`;
    const prefix = `test_${unique()}`;
    streams.push(stream);
    const nats = { url, stream, subjectPrefix: prefix };
    const db = await createTestDatabase('inventory');
    const app = await buildInventory(db.url, products.url, { OUTBOX_RELAY: 'off' });
    try {
      const id = await createProductIn(products.app, 2);
      await setStockIn(app, id, 50);
      const purchaseIds = await buyMany(app, id, 10);
      const pending = await pendingIn(db);
      expect(pending).toBe(21);

      // The "crash": every publish is acked, then marking fails and the transaction rolls back.
      await db.pool.query(`
        CREATE FUNCTION crash_before_mark() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'relay killed between publish and mark'; END $$;
        CREATE TRIGGER crash_before_mark BEFORE UPDATE ON outbox
          FOR EACH ROW EXECUTE FUNCTION crash_before_mark();`);
      const dying = createNatsPublisher(nats, silent);
      const first = createOutboxRelay({ pool: db.pool, log: silent, publisher: dying, pollMs: 20 });
      await expect(first.relayOnce()).rejects.toThrow('relay killed between publish and mark');
      await first.stop();
      expect(await pendingIn(db)).toBe(pending);
      expect(await readStream(nc, stream)).toHaveLength(pending);

      // The next relay (a restarted instance) publishes the whole backlog again.
      await db.pool.query('DROP TRIGGER crash_before_mark ON outbox');
      const next = createOutboxRelay({
        pool: db.pool,
        log: silent,
        publisher: createNatsPublisher(nats, silent),
        pollMs: 20,
      });
      while ((await next.relayOnce()) > 0);
      await next.stop();
      expect(await pendingIn(db)).toBe(0);

      const received = await readStream(nc, stream);
      expect(received).toHaveLength(pending);
      expectExactlyThePurchases(received, prefix, purchaseIds, 2);
      expect(new Set(received.map((r) => r.event.id)).size).toBe(pending);
    } finally {
      await app.close();
      await db.drop();
    }
  });
});

/** A port on 127.0.0.1 that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(!natsServerBinary)(
  titled('NATS outage (own nats-server)', natsServerBinary, noBinary),
  () => {
    let server: ChildProcess | undefined;
    let port: number;
    let storeDir: string;
    let nc: NatsConnection | undefined;

    async function startServer() {
      const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], {
        stdio: 'ignore',
      });
      server = child;
      const deadline = Date.now() + 10_000;
      while (!(await natsAnswers(`nats://127.0.0.1:${port}`))) {
        if (Date.now() > deadline) throw new Error(`nats-server did not start on port ${port}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    async function stopServer() {
      const child = server;
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }

    beforeAll(async () => {
      port = await freePort();
      storeDir = await mkdtemp(join(tmpdir(), 'inventory-nats-'));
      await startServer();
    });

    afterAll(async () => {
      await nc?.close();
      await stopServer();
      await rm(storeDir, { recursive: true, force: true });
    });

    it('purchases succeed while NATS is down, and every event arrives once it is back', async () => {
      const natsUrl = `nats://127.0.0.1:${port}`;
      const stream = `OUTAGE_${unique()}`;
      const prefix = `outage_${unique()}`;
      const products = await startProducts();
      const db = await createTestDatabase('inventory');
      const app = await buildInventory(db.url, products.url, {
        NATS_URL: natsUrl,
        NATS_STREAM: stream,
        NATS_SUBJECT_PREFIX: prefix,
        OUTBOX_POLL_MS: '20',
      });
      try {
        const id = await createProductIn(products.app, 1.5);
        await setStockIn(app, id, 100);
        const before = await buyMany(app, id, 3);
        await expect.poll(() => pendingIn(db), { timeout: 10_000 }).toBe(0);

        await stopServer();
        const during = await buyMany(app, id, 10);
        // Nothing can be delivered: the events wait in the outbox.
        await new Promise((r) => setTimeout(r, 300));
        expect(await pendingIn(db)).toBe(20);

        await startServer();
        await expect.poll(() => pendingIn(db), { timeout: 30_000, interval: 200 }).toBe(0);
        nc = await connect({ servers: natsUrl });
        const received = await readStream(nc, stream);
        expectExactlyThePurchases(received, prefix, [...before, ...during], 1.5);
        expect(received).toHaveLength(13 + 14);
      } finally {
        await app.close();
        await db.drop();
        await products.close();
      }
    }, 60_000);
  },
);
