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
 * True when PostgreSQL itself refused the statement with an ERROR, which rolls back the statement's
 * implicit transaction: nothing of it was recorded. Not for a lost or broken connection (class 08,
 * a FATAL, or the driver's own errors): the commit may have happened before the answer was lost.
 */
const rolledBack = (err: unknown) =>
  err instanceof pg.DatabaseError &&
  err.severity === 'ERROR' &&
  !err.code?.startsWith('08') &&
  !err.code?.startsWith('XX');

/**
 * Group commit. Most of what a purchase costs the database and this process is paid per statement:
 * the round trip and the wake-ups it causes on both sides, the executor's start, the commit and its
 * WAL flush. So an instance writes its purchases one statement at a time: a purchase that arrives
 * while no statement is in flight is recorded at once, alone; the ones that arrive meanwhile wait
 * and the next statement (`recordPurchases`) records them together, up to MAX_BATCH, with one round
 * trip and one commit. Idle, nobody waits; under load, many purchases share a statement.
 *
 * Each purchase of a batch is judged exactly as if alone, on the stock the earlier ones of its
 * product left: a product's purchases keep their arrival order. A batch is sorted by product, so that
 * any two batches, of this instance or another, lock stock rows in the same order and cannot deadlock.
 *
 * A row lock held elsewhere (another instance's purchase, an adjustment, an operator's open
 * transaction) must not hold up the instance. A statement in flight for longer than STALL_MS stops
 * counting as the one being written, and the next batch starts beside it; products of a statement
 * still in flight stay out of new batches until it ends, so their purchases never overtake each
 * other. And a batch gives up a row lock it has waited for too long (the function's `lock_timeout`),
 * so the purchases of other products in it are not held up with it.
 *
 * A batch that PostgreSQL refuses (that lock timeout, a value it rejects) rolled back: nothing of it
 * was recorded, so its purchases are recorded again each on its own — a product's one after another,
 * in arrival order; different products concurrently — and one that cannot be recorded fails alone.
 * A batch that fails otherwise (the connection lost) may or may not have committed, so each of its
 * purchases fails, as a single purchase would, rather than risk selling twice.
 *
 * `pool` must be a pool: the batch relies on each statement being its own transaction.
 */
export function createPurchaseRecorder(pool: pg.Pool, registry?: Registry): PurchaseRecorder {
  let queue: Waiting[] = [];
  // Products with a statement in flight, or purchases being recorded again after a refused batch.
  const busy = new Set<number>();
  // Statements in flight that have not stalled: at most one.
  let writing = 0;
  const batchSizes = new Histogram({
    name: 'purchase_batch_size',
    help: 'Purchases recorded by one group-commit statement',
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
    recordPurchase(pool, purchase).then(resolve, reject);

  function release(productoIds: Iterable<number>): void {
    for (const productoId of productoIds) busy.delete(productoId);
    pump();
  }

  function recordEachAgain(batch: Waiting[]): void {
    const byProduct = new Map<number, Waiting[]>();
    for (const waiting of batch) {
      const id = waiting.purchase.productoId;
      byProduct.set(id, [...(byProduct.get(id) ?? []), waiting]);
    }
    for (const [productoId, purchases] of byProduct) {
      void (async () => {
        for (const waiting of purchases) await recordAlone(waiting);
      })().finally(() => release([productoId]));
    }
  }

  /** Records the batch; resolves when its statement has ended, not the purchases recorded again. */
  async function write(batch: Waiting[]): Promise<void> {
    const products = new Set(batch.map((waiting) => waiting.purchase.productoId));
    if (batch.length === 1) {
      await recordAlone(batch[0]!);
      return release(products);
    }
    try {
      const outcomes = await recordPurchases(
        pool,
        batch.map((waiting) => waiting.purchase),
      );
      for (const [index, waiting] of batch.entries()) waiting.resolve(outcomes[index]!);
    } catch (err) {
      if (rolledBack(err)) return recordEachAgain(batch);
      for (const waiting of batch) waiting.reject(err);
    }
    release(products);
  }

  function pump(): void {
    while (writing === 0 && queue.length > 0) {
      const batch = nextBatch();
      if (batch.length === 0) return;
      batchSizes.observe(batch.length);
      writing += 1;
      let stalled = false;
      const stall = setTimeout(() => {
        stalled = true;
        writing -= 1;
        pump();
      }, STALL_MS);
      void write(batch).finally(() => {
        clearTimeout(stall);
        if (!stalled) {
          writing -= 1;
          pump();
        }
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
