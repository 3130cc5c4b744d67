import type pg from 'pg';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { type EventPublisher, OutOfOrderError } from './outbox.publisher.js';
import {
  type Backlog,
  backlog,
  hasPending,
  markPublished,
  pendingBatch,
  tryLockRelay,
  unlockRelay,
} from './outbox.repository.js';

export interface OutboxRelay {
  /** Delivers one batch; resolves with the number of events delivered (0 when another relay is at work). */
  relayOnce(): Promise<number>;
  start(): void;
  /** Lets the batch in progress finish, gives up the relay lock, then closes the publisher. */
  stop(): Promise<void>;
}

export interface OutboxRelayOptions {
  pool: pg.Pool;
  log: Logger;
  /** Unset: events are delivered to the log only. */
  publisher?: EventPublisher | undefined;
  /** Metrics go here when given (the app's registry). */
  registry?: Registry;
  pollMs: number;
  /** Events read, published together and marked per batch. */
  batchSize?: number;
  maxBackoffMs?: number;
}

/** A relay that has delivered nothing for this long gives up the lock between polls. */
const IDLE_RESIGN_MS = 5_000;

/**
 * Delivers the outbox: each event as one structured log line and, with NATS configured, to
 * JetStream, then marks it delivered. At least once: a crash between publish and mark re-publishes
 * on the next run, which JetStream drops by `Nats-Msg-Id` within its duplicate window.
 *
 * A batch is read, published with every event in flight at once (acknowledgements awaited together)
 * and marked delivered by one statement, written while the next batch is read and published; no
 * transaction is open meanwhile.
 *
 * Why one relay at a time, and not `FOR UPDATE SKIP LOCKED`: per product, `seq` order is commit
 * order (rows are written under the product's stock row lock), and consumers rely on it. Several
 * relays taking batches side by side would publish a product's later event while another relay still
 * holds its earlier one. So a relay delivers only while its session holds a PostgreSQL advisory lock;
 * the others find it taken and try again at their next poll. A running relay keeps the lock while
 * events keep coming (a poll is then one statement on its session) and gives it up after 5 s without
 * any, on a failure and on stop; `relayOnce()` alone gives it up once the backlog is read to its end.
 * A relay that dies loses it with its session, and the next one re-publishes what it had published
 * but not marked (duplicates that JetStream drops).
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { pool, log, publisher, pollMs } = options;
  const batchSize = options.batchSize ?? 1_000;
  const maxBackoffMs = options.maxBackoffMs ?? 10_000;
  const registers = options.registry ? [options.registry] : [];
  const published = new Counter({
    name: 'outbox_published_total',
    help: 'Outbox events delivered by this instance (logged, and published to NATS when configured)',
    labelNames: ['type'] as const,
    registers,
  });
  // Both gauges come from one query per scrape: the first to collect starts it, the other shares it.
  let measuring: Promise<Backlog | undefined> | undefined;
  const measure = () => {
    measuring ??= backlog(pool)
      .catch((err: unknown) => {
        // A scrape must not fail while the database is away; the gauges keep their last values.
        log.debug({ err }, 'could not measure the outbox backlog');
        return undefined;
      })
      .finally(() => {
        measuring = undefined;
      });
    return measuring;
  };
  new Gauge({
    name: 'outbox_pending',
    help: 'Outbox events not yet delivered (backlog), counted at scrape time',
    registers,
    async collect() {
      const measured = await measure();
      if (measured) this.set(measured.pending);
    },
  });
  new Gauge({
    name: 'outbox_oldest_pending_age_seconds',
    help: 'How long the oldest undelivered outbox event has waited (0 when none), at scrape time',
    registers,
    async collect() {
      const measured = await measure();
      if (measured) this.set(measured.oldestAgeSeconds);
    },
  });

  /** This relay's session while it holds the relay lock. */
  let session: pg.PoolClient | undefined;
  /**
   * The mark of the last batch, written while the next batch is read and published: its events are
   * left out of that read, and it is finished before the next mark starts.
   */
  let marking: { ids: string[]; done: Promise<void> } | undefined;
  // A session that breaks between statements must not crash the process; the next statement fails.
  const onSessionError = (err: Error) => log.warn({ message: err.message }, 'relay session lost');

  async function lead(): Promise<pg.PoolClient | undefined> {
    const client = await pool.connect();
    client.on('error', onSessionError);
    let locked = false;
    try {
      locked = await tryLockRelay(client);
    } finally {
      if (!locked) {
        client.removeListener('error', onSessionError);
        client.release();
      }
    }
    return locked ? client : undefined;
  }

  async function finishMarking(): Promise<void> {
    const current = marking;
    if (!current) return;
    try {
      await current.done;
    } finally {
      if (marking === current) marking = undefined;
    }
  }

  async function resign(): Promise<void> {
    const client = session;
    if (!client) return;
    session = undefined;
    // A mark that fails here leaves its events pending: the next relay publishes them again.
    await finishMarking().catch(() => undefined);
    client.removeListener('error', onSessionError);
    try {
      await unlockRelay(client);
      client.release();
    } catch {
      // Ending the session releases its lock too.
      client.release(true);
    }
  }

  /** One batch: whether more may be waiting right now (a full batch, or a publish chain cut short). */
  async function deliverBatch(): Promise<{ delivered: number; more: boolean }> {
    if (!session) {
      if (!(await hasPending(pool))) return { delivered: 0, more: false };
      // Connect (or find NATS still down) before taking the lock.
      await publisher?.ready();
      session = await lead();
      if (!session) return { delivered: 0, more: false };
    } else {
      await publisher?.ready();
    }
    // While the session writes the last mark, read on another connection, leaving that batch out.
    const events = marking
      ? await pendingBatch(pool, batchSize, marking.ids)
      : await pendingBatch(session, batchSize);
    if (events.length === 0) return { delivered: 0, more: false };
    const outcomes = publisher ? await publisher.publishInOrder(events) : events.map(() => undefined);
    const delivered = events.filter((_, index) => outcomes[index] === undefined);
    for (const event of delivered) {
      log.info(
        { event: event.type, id: event.id, occurred_at: event.occurred_at, data: event.data },
        'event',
      );
    }
    await finishMarking();
    // What was acknowledged is marked even when a publish failed, so it is not published again.
    if (delivered.length > 0) {
      const ids = delivered.map((e) => e.id);
      const done = markPublished(session, ids).then(() => {
        for (const event of delivered) published.inc({ type: event.type });
      });
      // Awaited by the next batch or on giving up the lock; not an unhandled rejection meanwhile.
      done.catch(() => undefined);
      marking = { ids, done };
    }
    const failure = outcomes.find((outcome) => outcome !== undefined);
    // The chain was cut by an event JetStream already held (a re-publish) or by something published
    // in between: nothing is wrong, the next batch starts a new chain at once.
    if (failure instanceof OutOfOrderError) return { delivered: delivered.length, more: true };
    if (failure) throw failure;
    return { delivered: delivered.length, more: events.length === batchSize };
  }

  async function relayOnce(): Promise<number> {
    try {
      const { delivered, more } = await deliverBatch();
      if (!more) {
        await finishMarking();
        // Between bursts the lock is free, so that any instance may take over.
        await resign();
      }
      return delivered;
    } catch (err) {
      await resign();
      throw err;
    }
  }

  let running: Promise<void> | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function loop(): Promise<void> {
    let failures = 0;
    let lastDelivery = performance.now();
    while (!stopping) {
      let delay = pollMs;
      try {
        const { delivered, more } = await deliverBatch();
        if (failures > 0) log.info('outbox relay delivering again');
        failures = 0;
        if (delivered > 0) lastDelivery = performance.now();
        // More are waiting: go straight on. Otherwise the lock is kept while events keep coming, so
        // that a busy relay polls with one statement on its session; idle for a while, it lets go.
        if (more) delay = 0;
        else if (session && performance.now() - lastDelivery > IDLE_RESIGN_MS) {
          await finishMarking();
          await resign();
        }
      } catch (err) {
        await resign();
        failures += 1;
        // Capped exponential backoff with jitter, so instances do not retry in step.
        const base = Math.min(maxBackoffMs, pollMs * 2 ** failures);
        delay = Math.round(base * (0.75 + Math.random() * 0.5));
        log.warn({ err, failures, retryInMs: delay }, 'outbox relay could not deliver; retrying');
      }
      if (delay > 0 && !stopping) await pause(delay);
    }
    await resign();
  }

  return {
    relayOnce,
    start() {
      if (running) return;
      stopping = false;
      running = loop();
    },
    async stop() {
      stopping = true;
      wake?.();
      await running;
      running = undefined;
      await resign();
      await publisher?.close();
    },
  };
}
