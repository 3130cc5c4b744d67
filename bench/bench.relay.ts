import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type pg from 'pg';

/**
 * The outbox relay seen from the database: how many events the service wrote and how many its relay
 * delivered while a target was driven, the backlog on the way, and how fast the relay alone drains a
 * backlog written by SQL. Events are counted in the `outbox` table, so the relay is measured whether
 * it delivers to the log only or to NATS.
 */

interface Counters {
  written: number;
  delivered: number;
  pending: number;
  /** performance.now() when the counts were taken. */
  at: number;
}

async function counters(pool: pg.Pool): Promise<Counters> {
  const { rows } = await pool.query<{ written: string; delivered: string }>(
    `SELECT count(*) AS written, count(published_at) AS delivered FROM outbox`,
  );
  const written = Number(rows[0]!.written);
  const delivered = Number(rows[0]!.delivered);
  return { written, delivered, pending: written - delivered, at: performance.now() };
}

/** The backlog: undelivered events (an index-only count on the pending index). */
export async function pending(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
  );
  return rows[0]!.n;
}

/** What the relay did while a side was driven, over all its runs. */
export class RelayTally {
  seconds = 0;
  written = 0;
  delivered = 0;
  maxBacklog = 0;
  endBacklog = 0;
}

export interface RelaySummary {
  /** Events the service wrote per second (two per purchase). */
  written_per_s: number;
  /** Events the relay delivered per second. */
  delivered_per_s: number;
  max_backlog: number;
  /** The backlog when the last run ended. */
  end_backlog: number;
}

export function summarizeRelay(tally: RelayTally): RelaySummary {
  const perSecond = (n: number) => (tally.seconds > 0 ? n / tally.seconds : 0);
  return {
    written_per_s: perSecond(tally.written),
    delivered_per_s: perSecond(tally.delivered),
    max_backlog: tally.maxBacklog,
    end_backlog: tally.endBacklog,
  };
}

/** Runs `drive`, counting the outbox before and after and sampling the backlog every half second. */
export async function watchOutbox(
  pool: pg.Pool,
  tally: RelayTally,
  drive: () => Promise<void>,
): Promise<void> {
  const before = await counters(pool);
  let driving = true;
  const sampling = (async () => {
    while (driving) {
      await sleep(500);
      if (driving) tally.maxBacklog = Math.max(tally.maxBacklog, await pending(pool));
    }
  })();
  try {
    await drive();
  } finally {
    driving = false;
    await sampling;
  }
  const after = await counters(pool);
  tally.seconds += (after.at - before.at) / 1000;
  tally.written += after.written - before.written;
  tally.delivered += after.delivered - before.delivered;
  tally.endBacklog = after.pending;
  tally.maxBacklog = Math.max(tally.maxBacklog, after.pending);
}

/** Waits until the relay has delivered everything, for at most `timeoutMs`; the backlog left. */
export async function settle(pool: pg.Pool, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let left = await pending(pool);
  while (left > 0 && performance.now() < deadline) {
    await sleep(50);
    left = await pending(pool);
  }
  return left;
}

export interface DrainResult {
  events: number;
  seconds: number;
  per_s: number;
}

/**
 * The relay alone: `events` stock events of the given products written at once by SQL while nothing
 * else runs, and the time until the relay has delivered them all.
 */
export async function measureDrain(
  pool: pg.Pool,
  productIds: number[],
  events: number,
): Promise<DrainResult> {
  if ((await settle(pool, 60_000)) > 0)
    throw new Error('the relay did not empty the outbox before the drain');
  await pool.query(
    `INSERT INTO outbox (type, producto_id, data)
     SELECT 'inventory.updated', p, jsonb_build_object('producto_id', p, 'cantidad_anterior', g + 1,
              'cantidad', g, 'causa', 'adjustment')
     FROM generate_series(1, $1::int) AS g, LATERAL (SELECT ($2::int[])[1 + g % cardinality($2::int[])] AS p) AS x`,
    [events, productIds],
  );
  const started = performance.now();
  const left = await settle(pool, 300_000);
  if (left > 0) throw new Error(`the relay left ${left} of ${events} events after 300 s`);
  const seconds = (performance.now() - started) / 1000;
  return { events, seconds, per_s: events / seconds };
}

/** A JetStream stream of the run's own on the machine's NATS, counted at the end and deleted. */
export interface BenchStream {
  name: string;
  subjectPrefix: string;
  messages(): Promise<number>;
  dispose(): Promise<void>;
}

export async function benchStream(url: string, runId: string): Promise<BenchStream> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: url, timeout: 2_000, maxReconnectAttempts: -1 });
  } catch (err) {
    throw new Error(`--nats: no NATS answers at ${url} (${(err as Error).message}); set NATS_URL`);
  }
  const jsm = await jetstreamManager(nc);
  const name = `BENCH_${runId.toUpperCase()}`;
  return {
    name,
    subjectPrefix: `bench_${runId}`,
    async messages() {
      return (await jsm.streams.info(name)).state.messages;
    },
    async dispose() {
      await jsm.streams.delete(name).catch(() => undefined);
      await nc.close();
    },
  };
}
