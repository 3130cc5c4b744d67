import { captureTraceContext, inBatchSpan } from '@catalogo/kit/tracing';
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
/**
 * Statements in flight at most, stalled ones included: what this instance's purchases may take of
 * the pool it shares with every other route and the health check, however many rows are locked.
 */
export const MAX_STATEMENTS = 4;

export interface PurchaseRecorder {
  /** Records a purchase exactly as `recordPurchase` does, possibly in one statement with others. */
  record(purchase: NewPurchase): Promise<PurchaseOutcome>;
}

interface Waiting {
  purchase: NewPurchase;
  resolve: (outcome: PurchaseOutcome) => void;
  reject: (err: unknown) => void;
  /** From a batch PostgreSQL refused: recorded by a statement of its own. */
  alone?: true;
  /** The request's trace, which the statement recording the purchase joins. */
  trace: unknown;
}

/**
 * SQLSTATE classes that can come with a session lost or cut short, where the outcome of the
 * statement is unknown: connection (08), insufficient resources (53), operator intervention (57),
 * system (58), internal (XX).
 */
const OUTCOME_UNKNOWN = /^(08|53|57|58|XX)/;

/**
 * True when PostgreSQL refused the statement, which rolls back the statement's implicit transaction:
 * nothing of it was recorded. Decided by the SQLSTATE (the severity text is localised); not for a
 * lost or broken connection, nor the driver's own errors (no SQLSTATE), where the commit may have
 * happened before the answer was lost.
 */
const rolledBack = (err: unknown) =>
  err instanceof pg.DatabaseError &&
  /^[0-9A-Z]{5}$/.test(err.code ?? '') &&
  !OUTCOME_UNKNOWN.test(err.code ?? '');

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
 * counting as the one being written, and the next starts beside it, up to MAX_STATEMENTS; products of
 * a statement still in flight stay out of new ones until it ends, so their purchases never overtake
 * each other. And a batch gives up a row lock it has waited for too long (the function's
 * `lock_timeout`), so the purchases of other products in it are not held up with it.
 *
 * A batch that PostgreSQL refuses (that lock timeout, a value it rejects) rolled back: nothing of it
 * was recorded. Its purchases go back to the head of the queue and are recorded by statements of their
 * own, before any later purchase of their products, so one that cannot be recorded fails alone. A
 * batch that fails otherwise (the connection lost) may or may not have committed, so each of its
 * purchases fails, as a single purchase would, rather than risk selling twice.
 *
 * `pool` must be a pool: the batch relies on each statement being its own transaction.
 */
export function createPurchaseRecorder(pool: pg.Pool, registry?: Registry): PurchaseRecorder {
  let queue: Waiting[] = [];
  // Products with a statement in flight.
  const busy = new Set<number>();
  let inFlight = 0;
  // Statements in flight that have not stalled: at most one.
  let writing = 0;
  const batchSizes = new Histogram({
    name: 'purchase_batch_size',
    help: 'Purchases recorded by one group-commit statement',
    buckets: [1, 2, 4, 8, 16, 32],
    registers: registry ? [registry] : [],
  });

  function nextBatch(): Waiting[] {
    // A purchase of a refused batch first, alone. Only when every product with one left is busy does
    // a batch form, and then without those products: their later purchases never go first.
    const again = queue.findIndex((w) => w.alone && !busy.has(w.purchase.productoId));
    const batch = again >= 0 ? queue.splice(again, 1) : [];
    if (batch.length === 0) {
      const rest: Waiting[] = [];
      for (const waiting of queue) {
        const free = batch.length < MAX_BATCH && !busy.has(waiting.purchase.productoId);
        (free ? batch : rest).push(waiting);
      }
      queue = rest;
    }
    for (const waiting of batch) busy.add(waiting.purchase.productoId);
    // A stable sort: a product's purchases stay in arrival order.
    return batch.sort((a, b) => a.purchase.productoId - b.purchase.productoId);
  }

  async function write(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) {
      const [{ purchase, resolve, reject }] = batch as [Waiting];
      return recordPurchase(pool, purchase).then(resolve, reject);
    }
    try {
      const outcomes = await recordPurchases(
        pool,
        batch.map((waiting) => waiting.purchase),
      );
      for (const [index, waiting] of batch.entries()) waiting.resolve(outcomes[index]!);
    } catch (err) {
      if (!rolledBack(err)) {
        for (const waiting of batch) waiting.reject(err);
        return;
      }
      for (const waiting of batch) waiting.alone = true;
      queue.unshift(...batch);
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
      // One span per statement, in the trace of the batch's first request, linked to all of them.
      const traces = batch.map((waiting) => waiting.trace);
      void inBatchSpan('purchases.batch', traces, () => write(batch)).finally(() => {
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
        queue.push({ purchase, resolve, reject, trace: captureTraceContext() });
        pump();
      });
    },
  };
}
