/**
 * The relay under fire: 20 000 events of 40 products, delivered by a relay in a process of its own
 * that dies (SIGKILL) midway — between JetStream's acknowledgements of a batch and marking it — then
 * by another relay that takes over while the NATS server itself is killed (SIGKILL) with a batch in
 * flight, and restarted. Read back from JetStream, the stream holds every event of the outbox exactly
 * once, and each product's events in the order of the outbox (commit order).
 *
 * Needs the nats-server binary (a server of the test's own, on a free port with its own store, so
 * killing it disturbs nobody); skipped with a message without it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../../test/support/database.js';
import { createNatsPublisher, type EventPublisher } from '../src/outbox/outbox.publisher.js';
import { createOutboxRelay } from '../src/outbox/outbox.relay.js';
import { NATS_SERVER_BINARY, ownNats, readStream, streamCount } from './nats.js';

if (!NATS_SERVER_BINARY) {
  console.log(
    '[outbox.delivery] SKIPPED: the relay crash test needs the nats-server binary (PATH or /usr/sbin)',
  );
}

const EVENTS = 20_000;
const PRODUCTS = 40;
const STREAM = 'DELIVERY';
const PREFIX = 'delivery';
const RELAY_PROCESS = fileURLToPath(new URL('./fixtures/relay.process.ts', import.meta.url));

/** Polls `read` until `done` holds of its value, for at most `timeoutMs`. */
async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`still ${String(value)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Log lines kept for the test to read. */
function capturingLogger() {
  const lines: { msg?: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'warn' }, stream), lines };
}

describe.skipIf(!NATS_SERVER_BINARY)('relay delivery through crashes (own nats-server)', () => {
  it('20 000 events reach JetStream once each, in order per product, though a relay and NATS are killed midway', async () => {
    const nats = await ownNats(NATS_SERVER_BINARY as string);
    const db = await createTestDatabase('inventory');
    let child: ChildProcess | undefined;
    let nc: NatsConnection | undefined;
    try {
      // Products interleaved as purchases of many products would leave them; `n` numbers each
      // product's events in the order they were written.
      await db.pool.query(
        `INSERT INTO outbox (type, producto_id, data)
         SELECT CASE WHEN g % 2 = 0 THEN 'inventory.updated' ELSE 'purchase.completed' END, p,
                jsonb_build_object('producto_id', p, 'n', g)
         FROM generate_series(1, $1::int) AS g, LATERAL (SELECT 1 + (g * 7919) % $2::int AS p) AS product`,
        [EVENTS, PRODUCTS],
      );
      const { rows: outbox } = await db.pool.query<{ id: string; producto_id: number }>(
        'SELECT id, producto_id FROM outbox ORDER BY seq',
      );
      nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const inStream = () => streamCount(nc as NatsConnection, STREAM);
      const pending = async () =>
        (
          await db.pool.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
          )
        ).rows[0]!.n;

      // 1. A relay in a process of its own dies right after its third batch was acknowledged.
      child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', RELAY_PROCESS], {
        env: {
          ...process.env,
          DATABASE_URL: db.url,
          NATS_URL: nats.url,
          NATS_STREAM: STREAM,
          NATS_SUBJECT_PREFIX: PREFIX,
          CRASH_AFTER_BATCHES: '3',
        },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      const [, signal] = await once(child, 'exit');
      expect(signal).toBe('SIGKILL');
      const inStreamAtCrash = await inStream();
      // Acknowledged, not marked: the next relay publishes them again.
      expect(EVENTS - (await pending())).toBeLessThan(inStreamAtCrash);

      // 2. Another relay takes over; NATS is killed with its third batch in flight, and restarted.
      const { log, lines } = capturingLogger();
      const toNats = createNatsPublisher({ url: nats.url, stream: STREAM, subjectPrefix: PREFIX }, log);
      let batches = 0;
      let natsKilled: Promise<void> | undefined;
      const publisher: EventPublisher = {
        ready: () => toNats.ready(),
        close: () => toNats.close(),
        publishInOrder(events) {
          const outcomes = toNats.publishInOrder(events);
          batches += 1;
          if (batches === 3) natsKilled = nats.stop('SIGKILL');
          return outcomes;
        },
      };
      const relay = createOutboxRelay({ pool: db.pool, log, publisher, pollMs: 20, maxBackoffMs: 500 });
      relay.start();
      try {
        await waitFor(
          async () => natsKilled !== undefined,
          (killed) => killed,
          30_000,
        );
        await natsKilled;
        const pendingWhileDown = await pending();
        expect(pendingWhileDown).toBeGreaterThan(0);
        await new Promise((r) => setTimeout(r, 300));
        await nats.start();
        await waitFor(pending, (n) => n === 0, 40_000);
      } finally {
        await relay.stop();
      }
      expect(lines.some((line) => line.msg === 'outbox relay could not deliver; retrying')).toBe(true);

      const received = await readStream(nc, STREAM);
      expect(received.length).toBe(EVENTS);
      for (const { msgId, event } of received) expect(msgId).toBe(event.id);
      expect(new Set(received.map((r) => r.event.id)).size).toBe(EVENTS);
      const perProduct = (events: { id: string; producto_id: number }[]) => {
        const byProduct = new Map<number, string[]>();
        for (const { id, producto_id } of events) {
          const ids = byProduct.get(producto_id) ?? [];
          ids.push(id);
          byProduct.set(producto_id, ids);
        }
        return byProduct;
      };
      const streamOrder = perProduct(
        received.map((r) => ({ id: r.event.id, producto_id: r.event.data.producto_id as number })),
      );
      const outboxOrder = perProduct(outbox);
      expect(streamOrder.size).toBe(PRODUCTS);
      for (const [producto, ids] of outboxOrder) expect(streamOrder.get(producto)).toEqual(ids);
    } finally {
      child?.kill('SIGKILL');
      await nc?.close();
      await nats.dispose();
      await db.drop();
    }
  }, 120_000);
});
