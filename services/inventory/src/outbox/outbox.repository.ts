import type { Queryable } from '@catalogo/kit/db';
import type pg from 'pg';

/** An event as docs/api.md §5 defines its envelope. */
export interface OutboxEvent {
  id: string;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
}

/**
 * The key of the session-level advisory lock that makes one relay at a time deliver: an arbitrary
 * constant that no other lock of this database uses.
 */
const RELAY_LOCK = 7_315_020_001;

/** A cheap probe (an index-only look at the partial index) so that an idle relay takes no lock. */
export async function hasPending(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ pending: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL) AS pending',
  );
  return rows[0]!.pending;
}

export interface Backlog {
  pending: number;
  /** Seconds since the oldest undelivered event committed; 0 when none waits. */
  oldestAgeSeconds: number;
}

/** The backlog and how long its oldest event has waited, in one statement. */
export async function backlog(db: Queryable): Promise<Backlog> {
  const { rows } = await db.query<Backlog>(
    `SELECT count(*)::int AS "pending",
            COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - (
              SELECT occurred_at FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 1)), 0)::float8
              AS "oldestAgeSeconds"
     FROM outbox WHERE published_at IS NULL`,
  );
  return rows[0]!;
}

/**
 * True when this session is now the one relay. The lock is the session's: it outlives statements,
 * so the relay publishes with no transaction open, and it goes when the session ends — at once when
 * the instance dies, its socket being closed. A host that vanishes closes nothing: the keepalives set
 * here make PostgreSQL end that session, and free the lock, within about 20 s instead of hours.
 */
export async function tryLockRelay(session: pg.PoolClient): Promise<boolean> {
  const { rows } = await session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
    RELAY_LOCK,
  ]);
  if (!rows[0]!.locked) return false;
  await session.query(
    `SELECT set_config('tcp_keepalives_idle', '10', false),
            set_config('tcp_keepalives_interval', '5', false),
            set_config('tcp_keepalives_count', '2', false)`,
  );
  return true;
}

export async function unlockRelay(session: pg.PoolClient): Promise<void> {
  await session.query('SELECT pg_advisory_unlock($1)', [RELAY_LOCK]);
}

/**
 * The oldest undelivered events, in `seq` order, leaving out `excluded` (a batch published whose mark
 * is still being written). Per product that is the order their changes committed (rows are written
 * under the product's stock row lock), and the rows of a product that are visible are all its
 * committed ones: one that commits later has a higher `seq` than all of them. Across products a lower
 * `seq` can become visible after a higher one; it is simply read next time.
 */
export async function pendingBatch(
  db: Queryable,
  limit: number,
  excluded: readonly string[] = [],
): Promise<OutboxEvent[]> {
  const { rows } = await db.query<OutboxEvent>(
    `SELECT id, type, occurred_at, data FROM outbox
     WHERE published_at IS NULL AND id NOT IN (SELECT unnest($2::uuid[]))
     ORDER BY seq LIMIT $1`,
    [limit, excluded],
  );
  return rows;
}

/** The channel on which a mark announces the last `delivered_seq` it gave (GET /api/events listens). */
export const DELIVERED_CHANNEL = 'outbox_delivered';

/**
 * Marks a whole batch delivered with one statement, numbering its events (`delivered_seq`) in `seq`
 * order, and announces the mark on DELIVERED_CHANNEL (sent when the statement commits, so a listener
 * that reads on the notification sees the rows). The numbers are taken from the sorted subquery
 * row by row; only the relay holding the lock marks, one mark after the other, so the numbers grow
 * in the order the marks commit. A row already marked keeps its number: it is never streamed twice.
 */
export async function markPublished(db: Queryable, ids: string[]): Promise<void> {
  await db.query(
    `WITH numbered AS MATERIALIZED (
       SELECT id, nextval('outbox_delivered_seq') AS delivered_seq
       FROM (SELECT id FROM outbox WHERE id = ANY($1::uuid[]) AND delivered_seq IS NULL ORDER BY seq) batch
     ), marked AS (
       UPDATE outbox o SET published_at = now(), delivered_seq = n.delivered_seq
       FROM numbered n WHERE o.id = n.id
       RETURNING o.delivered_seq
     )
     SELECT pg_notify($2, last::text) FROM (SELECT max(delivered_seq) AS last FROM marked) m
     WHERE last IS NOT NULL`,
    [ids, DELIVERED_CHANNEL],
  );
}

/** Deletes events delivered longer ago than the retention, in bounded batches. */
export async function purgeDelivered(db: Queryable, retentionHours: number, batch = 5_000): Promise<number> {
  let purged = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM outbox WHERE id = ANY (ARRAY(
         SELECT id FROM outbox
         WHERE published_at < now() - make_interval(hours => $1) LIMIT $2))`,
      [retentionHours, batch],
    );
    purged += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) return purged;
  }
}
