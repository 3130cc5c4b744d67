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
 * The key of the transaction-level advisory lock that makes one relay at a time deliver: an
 * arbitrary constant that no other lock of this database uses.
 */
const RELAY_LOCK = 7_315_020_001;

/** A cheap probe (an index-only look at the partial index) so that an idle relay opens no transaction. */
export async function hasPending(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ pending: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL) AS pending',
  );
  return rows[0]!.pending;
}

export async function countPending(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ count: number }>(
    'SELECT count(*)::int AS count FROM outbox WHERE published_at IS NULL',
  );
  return rows[0]!.count;
}

/** True when this transaction is now the one relay; the lock goes with the transaction's end. */
export async function tryLockRelay(tx: pg.PoolClient): Promise<boolean> {
  const { rows } = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [
    RELAY_LOCK,
  ]);
  return rows[0]!.locked;
}

/** The oldest undelivered events, in `seq` order (per product, the order their changes committed). */
export async function pendingBatch(tx: pg.PoolClient, limit: number): Promise<OutboxEvent[]> {
  const { rows } = await tx.query<OutboxEvent>(
    `SELECT id, type, occurred_at, data FROM outbox
     WHERE published_at IS NULL ORDER BY seq LIMIT $1`,
    [limit],
  );
  return rows;
}

export async function markPublished(tx: pg.PoolClient, ids: string[]): Promise<void> {
  await tx.query('UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])', [ids]);
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
