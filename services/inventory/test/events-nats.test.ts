/**
 * Events through a real NATS JetStream (docs/api.md §5): every committed purchase reaches the stream
 * exactly once — a relay that dies between publishing and marking re-publishes, and JetStream drops
 * the copy by its Nats-Msg-Id — and a NATS outage delays events without failing a purchase.
 *
 * A batch is published with every event in flight, yet JetStream stores an event only right after
 * the one before it in the batch, so a product's events are never stored out of order.
 *
 * Needs NATS at NATS_URL (CI exports nats://127.0.0.1:4222); the outage and ordering tests start
 * their own `nats-server` and need only the binary. Without them these tests are skipped, never failed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { App } from '@catalogo/kit/app';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { createNatsPublisher, OutOfOrderError, streamConfig } from '../src/outbox/outbox.publisher.js';
import { createOutboxRelay } from '../src/outbox/outbox.relay.js';
import {
  buildInventory,
  createProductIn,
  headers,
  purchaseBody,
  setStockIn,
  startProducts,
} from './helpers.js';
import { NATS_SERVER_BINARY, natsAnswers, type OwnNats, ownNats, type Received, readStream } from './nats.js';

const NATS_URL = process.env.NATS_URL;
const silent = pino({ level: 'silent' });

const hasNats = await natsAnswers(NATS_URL);
const noNats =
  `no NATS with JetStream answers at NATS_URL (${NATS_URL ?? 'unset'}); ` +
  'set NATS_URL=nats://127.0.0.1:4222 to run them';
if (!hasNats) console.log(`[events-nats] SKIPPED the JetStream delivery tests: ${noNats}`);
const noBinary = 'the nats-server binary is not installed';
if (!NATS_SERVER_BINARY) console.log(`[events-nats] SKIPPED the outage and ordering tests: ${noBinary}`);
/** A suite's name, which says why when it is skipped (reporters list skipped suites by name). */
const titled = (name: string, runs: boolean, why: string) => (runs ? name : `${name} — skipped: ${why}`);

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

describe.skipIf(!NATS_SERVER_BINARY)(
  titled('NATS outage (own nats-server)', NATS_SERVER_BINARY !== undefined, noBinary),
  () => {
    let server: OwnNats;
    let nc: NatsConnection | undefined;

    beforeAll(async () => {
      server = await ownNats(NATS_SERVER_BINARY as string);
    });

    afterAll(async () => {
      await nc?.close();
      await server?.dispose();
    });

    it('purchases succeed while NATS is down, and every event arrives once it is back', async () => {
      const natsUrl = server.url;
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

        await server.stop();
        const during = await buyMany(app, id, 10);
        // Nothing can be delivered: the events wait in the outbox.
        await new Promise((r) => setTimeout(r, 300));
        expect(await pendingIn(db)).toBe(20);

        await server.start();
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

    it('a batch in flight is stored in its order or not at all: an event refused holds back those after it', async () => {
      const stream = `CHAIN_${unique()}`;
      const prefix = `chain_${unique()}`;
      const own = await connect({ servers: server.url });
      // A stream that refuses large messages: the second event of the batch is refused on its own.
      await (await jetstreamManager(own)).streams.add({
        ...streamConfig({ stream, subjectPrefix: prefix }),
        max_msg_size: 512,
      });
      const publisher = createNatsPublisher({ url: server.url, stream, subjectPrefix: prefix }, silent);
      const event = (n: number, filler = '') => ({
        id: randomUUID(),
        type: 'inventory.updated',
        occurred_at: new Date().toISOString(),
        data: { producto_id: 1, n, filler },
      });
      const stored = async () => (await readStream(own, stream)).map((r) => r.event.data.n);
      try {
        await publisher.ready();
        const [first, large, third, fourth] = [event(1), event(2, 'x'.repeat(1_000)), event(3), event(4)];
        const outcomes = await publisher.publishInOrder([first, large, third, fourth]);
        expect(outcomes[0]).toBeUndefined();
        expect(outcomes[1]).toBeInstanceOf(Error);
        expect(outcomes[1]).not.toBeInstanceOf(OutOfOrderError);
        expect(outcomes[2]).toBeInstanceOf(OutOfOrderError);
        expect(outcomes[3]).toBeInstanceOf(OutOfOrderError);
        expect(await stored()).toEqual([1]);

        // Published again (a relay that died before marking): what the stream holds is acknowledged
        // without a second copy, and the rest is stored after it.
        expect(await publisher.publishInOrder([first, third, fourth])).toEqual([
          undefined,
          undefined,
          undefined,
        ]);
        expect(await stored()).toEqual([1, 3, 4]);

        // A batch whose head the stream already holds, but not as its last message: what follows the
        // head is refused rather than stored away from its predecessor; it is stored as the next head.
        const fifth = event(5);
        const again = await publisher.publishInOrder([third, fifth]);
        expect(again[0]).toBeUndefined();
        expect(again[1]).toBeInstanceOf(OutOfOrderError);
        expect(await publisher.publishInOrder([fifth])).toEqual([undefined]);
        expect(await stored()).toEqual([1, 3, 4, 5]);
      } finally {
        await publisher.close();
        await (await jetstreamManager(own)).streams.delete(stream);
        await own.close();
      }
    });
  },
);
