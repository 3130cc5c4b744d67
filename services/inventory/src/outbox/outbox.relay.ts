import { withTransaction } from '@catalogo/kit/db';
import type pg from 'pg';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventPublisher } from './outbox.publisher.js';
import { countPending, hasPending, markPublished, pendingBatch, tryLockRelay } from './outbox.repository.js';

export interface OutboxRelay {
  /** Delivers one batch; resolves with the number of events delivered (0 when another relay is at work). */
  relayOnce(): Promise<number>;
  start(): void;
  /** Lets the batch in progress finish, then closes the publisher. */
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
  batchSize?: number;
  maxBackoffMs?: number;
}

/**
 * Delivers the outbox: each event as one structured log line and, with NATS configured, to
 * JetStream, then marks it delivered. At least once: a crash between publish and mark re-publishes
 * on the next run, which JetStream drops by `Nats-Msg-Id` within its duplicate window.
 *
 * Why an advisory lock and not `FOR UPDATE SKIP LOCKED`: per product, `seq` order is commit order
 * (rows are written under the product's stock row lock), and consumers may rely on it. Several
 * relays skipping each other's locked rows would publish a product's later event while another
 * relay still holds its earlier one. So one relay at a time, across instances, takes a batch under
 * `pg_try_advisory_xact_lock` and publishes it in `seq` order; the others find the lock taken and
 * wait for their next poll. The lock is per transaction, so a relay that dies frees it at once.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { pool, log, publisher, pollMs } = options;
  const batchSize = options.batchSize ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 10_000;
  const registers = options.registry ? [options.registry] : [];
  const published = new Counter({
    name: 'outbox_published_total',
    help: 'Outbox events delivered by this instance (logged, and published to NATS when configured)',
    labelNames: ['type'] as const,
    registers,
  });
  new Gauge({
    name: 'outbox_pending',
    help: 'Outbox events not yet delivered (backlog), counted at scrape time',
    registers,
    async collect() {
      try {
        this.set(await countPending(pool));
      } catch (err) {
        // A scrape must not fail while the database is away; the gauge keeps its last value.
        log.debug({ err }, 'could not count pending outbox events');
      }
    },
  });

  async function relayOnce(): Promise<number> {
    if (!(await hasPending(pool))) return 0;
    // Connect (or find NATS still down) before taking the lock, not while holding a transaction.
    await publisher?.ready();
    const { delivered, failure } = await withTransaction(pool, async (tx) => {
      if (!(await tryLockRelay(tx))) return { delivered: [], failure: undefined };
      const events = await pendingBatch(tx, batchSize);
      const done: typeof events = [];
      let failure: unknown;
      for (const event of events) {
        try {
          // One at a time, each acked before the next: a failure never leaves a later event of the
          // batch published before an earlier one.
          await publisher?.publish(event);
        } catch (err) {
          failure = err;
          break;
        }
        log.info(
          { event: event.type, id: event.id, occurred_at: event.occurred_at, data: event.data },
          'event',
        );
        done.push(event);
      }
      // What was acked is marked even when a later publish failed, so it is not published again.
      if (done.length > 0)
        await markPublished(
          tx,
          done.map((e) => e.id),
        );
      return { delivered: done, failure };
    });
    for (const event of delivered) published.inc({ type: event.type });
    if (failure !== undefined) throw failure;
    return delivered.length;
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
    while (!stopping) {
      let delay = pollMs;
      try {
        const delivered = await relayOnce();
        if (failures > 0) log.info('outbox relay delivering again');
        failures = 0;
        // A full batch means more are waiting: go straight on.
        if (delivered === batchSize) delay = 0;
      } catch (err) {
        failures += 1;
        // Capped exponential backoff with jitter, so instances do not retry in step.
        const base = Math.min(maxBackoffMs, pollMs * 2 ** failures);
        delay = Math.round(base * (0.75 + Math.random() * 0.5));
        log.warn({ err, failures, retryInMs: delay }, 'outbox relay could not deliver; retrying');
      }
      if (delay > 0 && !stopping) await pause(delay);
    }
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
      await publisher?.close();
    },
  };
}
