import type { Queryable } from '@catalogo/kit/db';
import pg from 'pg';
import { Histogram, type Registry } from 'prom-client';
import {
  type NewPurchase,
  type PurchaseOutcome,
  recordPurchase,
  recordPurchases,
} from './purchases.repository.js';

/** Purchases recorded by one statement at most. */
export const MAX_BATCH = 32;
/** A statement in flight for longer than this is waiting (for a row lock, most likely), not writing. */
export const STALL_MS = 50;
/** Statements in flight at most, stalled ones included. */
export const MAX_STATEMENTS = 4;

export interface PurchaseRecorder {
  /** Records a purchase exactly as `recordPurchase` does, possibly in one statement with others. */
  record(purchase: NewPurchase): Promise<PurchaseOutcome>;
}

interface Waiting {
  purchase: NewPurchase;
  resolve: (outcome: PurchaseOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit. Most of what a purchase costs the database and this process is paid per statement:
 * the round trip and the wake-ups it causes on both sides, the executor's start, the commit and its
 * WAL flush. So an instance writes its purchases one statement at a time: a purchase that arrives
 * while no statement is in flight is recorded at once, alone; the ones that arrive meanwhile wait
 * and the next statement (`recordPurchases`) records them together, up to MAX_BATCH, with one round
 * trip and one commit. Idle, nobody waits; under load, many purchases share a statement.
 *
 * Each purchase of a batch is judged exactly as if alone, on the stock the earlier ones left, and a
 * product's purchases keep their arrival order. A batch is sorted by product, so that any two
 * batches, of this instance or another, lock stock rows in the same order and cannot deadlock.
 *
 * With one statement at a time, a statement held up on a row lock (another instance's purchase, an
 * adjustment, an operator's open transaction) would hold up every purchase of the instance. So a
 * statement in flight for longer than STALL_MS stops counting as the one being written and the next
 * batch starts beside it, up to MAX_STATEMENTS. Products of a statement still in flight stay out of
 * new batches until it ends: their purchases never overtake each other.
 *
 * A statement that fails with an error from PostgreSQL rolled back: nothing of it was recorded, so its
 * purchases are recorded again each on its own, concurrently, and one that cannot be recorded fails
 * alone. One that fails otherwise (the connection lost) may or may not have committed, so each of its
 * purchases fails, as a single purchase would, rather than risk selling twice.
 */
export function createPurchaseRecorder(db: Queryable, registry?: Registry): PurchaseRecorder {
  let queue: Waiting[] = [];
  // Products of the statements in flight.
  const busy = new Set<number>();
  let inFlight = 0;
  // Statements in flight that have not stalled: at most one.
  let writing = 0;
  const batchSizes = new Histogram({
    name: 'purchase_batch_size',
    help: 'Purchases recorded by one statement (group commit)',
    buckets: [1, 2, 4, 8, 16, 32],
    registers: registry ? [registry] : [],
  });

  function nextBatch(): Waiting[] {
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    for (const waiting of queue) {
      const free = batch.length < MAX_BATCH && !busy.has(waiting.purchase.productoId);
      (free ? batch : rest).push(waiting);
    }
    queue = rest;
    for (const waiting of batch) busy.add(waiting.purchase.productoId);
    // A stable sort: a product's purchases stay in arrival order.
    return batch.sort((a, b) => a.purchase.productoId - b.purchase.productoId);
  }

  const recordAlone = ({ purchase, resolve, reject }: Waiting) =>
    recordPurchase(db, purchase).then(resolve, reject);

  async function write(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return recordAlone(batch[0]!);
    try {
      const outcomes = await recordPurchases(
        db,
        batch.map((waiting) => waiting.purchase),
      );
      for (const [index, waiting] of batch.entries()) waiting.resolve(outcomes[index]!);
    } catch (err) {
      if (!(err instanceof pg.DatabaseError)) {
        for (const waiting of batch) waiting.reject(err);
        return;
      }
      await Promise.all(batch.map(recordAlone));
    }
  }

  function pump(): void {
    while (writing === 0 && inFlight < MAX_STATEMENTS && queue.length > 0) {
      const batch = nextBatch();
      if (batch.length === 0) return;
      batchSizes.observe(batch.length);
      writing += 1;
      inFlight += 1;
      let stalled = false;
      const stall = setTimeout(() => {
        stalled = true;
        writing -= 1;
        pump();
      }, STALL_MS);
      void write(batch).finally(() => {
        clearTimeout(stall);
        if (!stalled) writing -= 1;
        inFlight -= 1;
        for (const waiting of batch) busy.delete(waiting.purchase.productoId);
        pump();
      });
    }
  }

  return {
    record(purchase) {
      return new Promise((resolve, reject) => {
        queue.push({ purchase, resolve, reject });
        pump();
      });
    },
  };
}
