import type { Queryable } from '@catalogo/kit/db';
import { type Deadline, deadlineExceeded } from '@catalogo/kit/deadline';
import { serviceUnavailable } from '@catalogo/kit/errors';
import { captureTraceContext, inBatchSpan } from '@catalogo/kit/tracing';
import pg from 'pg';
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { StockChanges } from '../stock/stock.metrics.js';
import {
  type NewPurchase,
  type PurchaseOutcome,
  type RowLocked,
  recordPurchases,
} from './purchases.repository.js';

/** Purchases recorded by one statement at most. */
export const MAX_BATCH = 32;
/** A statement in flight for longer than this is waiting (for a row lock, most likely), not writing. */
export const STALL_MS = 50;
/**
 * Statements in flight at most, stalled ones included: what this instance's purchases may take of
 * the pool it shares with every other route and the health check, however many rows are locked.
 * Those of products found locked take one less, so that the others always have a statement.
 */
export const MAX_STATEMENTS = 4;

export interface RecorderOptions {
  registry?: Registry;
  /** Purchases waiting for a statement at most: beyond, a purchase is refused at once (503). */
  queueMax?: number;
  /** How long a statement of a product found locked waits for its row at most (its deadline too). */
  lockWaitMs?: number;
  /** Counts the purchases each statement committed (`recordIn`'s are its caller's to count). */
  stockChanges?: StockChanges;
}

export interface PurchaseRecorder {
  /**
   * Records a purchase exactly as `recordPurchase` does, possibly in one statement with others.
   * Refuses it with a 503, nothing written, when the queue is full, when its deadline passes before
   * its statement starts, or when its stock row stays locked elsewhere for too long.
   */
  record(purchase: NewPurchase, deadline?: Deadline): Promise<PurchaseOutcome>;
  /**
   * Records a purchase on `tx`, a transaction of the caller's (one that also stores its idempotent
   * response), by the same rules: it does not wait for a row locked elsewhere unless one of the
   * MAX_STATEMENTS - 1 places for such waits is free, and then no longer than a queued purchase.
   */
  recordIn(tx: Queryable, purchase: NewPurchase, deadline: Deadline): Promise<PurchaseOutcome>;
}

interface Waiting {
  purchase: NewPurchase;
  resolve: (outcome: PurchaseOutcome) => void;
  reject: (err: unknown) => void;
  deadline: Deadline | undefined;
  /** Drops the purchase from the queue at its deadline. */
  timer?: NodeJS.Timeout;
  /** From a batch PostgreSQL refused: recorded by a statement of its own. */
  alone?: true;
  /** The request's trace, which the statement recording the purchase joins. */
  trace: unknown;
}

export const inventoryLocked = () =>
  serviceUnavailable('Inventario ocupado; reintente', undefined, 'inventory_locked');
export const queueFull = () => serviceUnavailable('Servicio saturado; reintente', undefined, 'queue_full');

/**
 * SQLSTATE classes that can come with a session lost or cut short, where the outcome of the
 * statement is unknown: connection (08), insufficient resources (53), operator intervention (57,
 * but a cancelled statement — its timeout — rolled back), system (58), internal (XX).
 */
const OUTCOME_UNKNOWN = /^(08|53|57(?!014)|58|XX)/;

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

/** PostgreSQL gave up waiting for a lock (lock_timeout): nothing of the statement was written. */
export const lockNotAvailable = (err: unknown) => err instanceof pg.DatabaseError && err.code === '55P03';

const isLocked = (outcome: PurchaseOutcome | RowLocked): outcome is RowLocked => 'locked' in outcome;

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
 * any two batches, of this instance or another, lock stock rows in the same order.
 *
 * A row lock held elsewhere (another instance's purchase, an adjustment, an operator's open
 * transaction) must not hold up the instance. A statement never waits for a row lock: it passes over
 * the locked rows and hands their purchases back. Their product is then "locked": its purchases are
 * recorded one at a time, each by a statement that waits for the row at most `lockWaitMs` (and never
 * past the purchase's deadline) before the purchase is refused (503, nothing written); at most
 * MAX_STATEMENTS - 1 such statements are in flight, so the other products always have one. The first
 * statement of a locked product that gets its row lets it back into batches. And a statement in
 * flight for longer than STALL_MS stops counting as the one being written, so the next starts beside
 * it; products of a statement still in flight stay out of new ones until it ends, so their purchases
 * never overtake each other.
 *
 * A batch that PostgreSQL refuses (a value it rejects, a timeout) rolled back: nothing of it was
 * recorded. Its purchases go back to the head of the queue and are recorded by statements of their
 * own, before any later purchase of their products, so one that cannot be recorded fails alone. A
 * batch that fails otherwise (the connection lost) may or may not have committed, so each of its
 * purchases fails, as a single purchase would, rather than risk selling twice.
 *
 * The queue is bounded (`queueMax`): a purchase that finds it full is refused at once. A purchase
 * whose deadline passes while it waits in the queue is dropped from it, never written.
 *
 * `pool` must be a pool: the batch relies on each statement being its own transaction.
 */
export function createPurchaseRecorder(pool: pg.Pool, options: RecorderOptions = {}): PurchaseRecorder {
  const queueMax = options.queueMax ?? 1_000;
  const lockWaitMs = options.lockWaitMs ?? 1_000;
  const registers = options.registry ? [options.registry] : [];
  let queue: Waiting[] = [];
  // Products with a statement in flight.
  const busy = new Set<number>();
  // Products whose stock row a statement found locked elsewhere, until one of theirs gets it.
  const locked = new Set<number>();
  let inFlight = 0;
  let lockedInFlight = 0;
  // Statements in flight that have not stalled: at most one.
  let writing = 0;
  const batchSizes = new Histogram({
    name: 'purchase_batch_size',
    help: 'Purchases recorded by one group-commit statement',
    buckets: [1, 2, 4, 8, 16, 32],
    registers,
  });
  new Gauge({
    name: 'purchase_queue_depth',
    help: 'Purchases waiting for a statement of the group-commit writer',
    registers,
    collect() {
      this.set(queue.length);
    },
  });

  function expire(waiting: Waiting): void {
    const index = queue.indexOf(waiting);
    if (index < 0) return;
    queue.splice(index, 1);
    waiting.reject(deadlineExceeded());
  }

  /** Puts purchases in the queue, at its head when they were taken from it before; drops the late. */
  function enqueue(waitings: Waiting[], atHead: boolean): void {
    const live: Waiting[] = [];
    for (const waiting of waitings) {
      const left = waiting.deadline?.remaining();
      if (left !== undefined && left <= 0) {
        waiting.reject(deadlineExceeded());
        continue;
      }
      if (left !== undefined) waiting.timer = setTimeout(expire, left, waiting);
      live.push(waiting);
    }
    if (atHead) queue.unshift(...live);
    else queue.push(...live);
  }

  function nextStatement(): { batch: Waiting[]; lockedRow: boolean } | undefined {
    // A purchase to record alone first: of a refused batch, or of a locked product (while a statement
    // is left for the others). The first in the queue of its product: they never overtake each other.
    for (const [index, waiting] of queue.entries()) {
      const id = waiting.purchase.productoId;
      const lockedRow = locked.has(id);
      if (!(waiting.alone || lockedRow) || busy.has(id)) continue;
      if (lockedRow && lockedInFlight >= MAX_STATEMENTS - 1) continue;
      queue.splice(index, 1);
      return { batch: [waiting], lockedRow };
    }
    // Then a batch, without the products that are busy, locked or have a purchase to record alone.
    const held = new Set(busy);
    for (const { purchase, alone } of queue) {
      if (alone || locked.has(purchase.productoId)) held.add(purchase.productoId);
    }
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    for (const waiting of queue) {
      const free = batch.length < MAX_BATCH && !held.has(waiting.purchase.productoId);
      (free ? batch : rest).push(waiting);
    }
    if (batch.length === 0) return undefined;
    queue = rest;
    // A stable sort: a product's purchases stay in arrival order.
    return { batch: batch.sort((a, b) => a.purchase.productoId - b.purchase.productoId), lockedRow: false };
  }

  /** How long a statement may wait for a locked row: lockWaitMs, never past the deadline. */
  const lockWait = (deadline: Deadline | undefined) =>
    Math.max(1, Math.min(lockWaitMs, deadline?.remaining() ?? lockWaitMs));

  async function write(batch: Waiting[], lockedRow: boolean): Promise<void> {
    const first = batch[0]!;
    const waitMs = lockedRow ? lockWait(first.deadline) : 0;
    let outcomes: (PurchaseOutcome | RowLocked)[];
    try {
      outcomes = await recordPurchases(
        pool,
        batch.map((waiting) => waiting.purchase),
        waitMs,
      );
    } catch (err) {
      if (lockedRow && lockNotAvailable(err)) return first.reject(inventoryLocked());
      if (batch.length === 1 || !rolledBack(err)) {
        for (const waiting of batch) waiting.reject(err);
        return;
      }
      for (const waiting of batch) waiting.alone = true;
      return enqueue(batch, true);
    }
    if (lockedRow) locked.delete(first.purchase.productoId);
    // The statement has committed: each purchase it granted is one movement.
    options.stockChanges?.inc({ causa: 'purchase' }, outcomes.filter((outcome) => outcome.ok).length);
    const handedBack: Waiting[] = [];
    for (const [index, waiting] of batch.entries()) {
      const outcome = outcomes[index]!;
      if (!isLocked(outcome)) {
        waiting.resolve(outcome);
        continue;
      }
      locked.add(waiting.purchase.productoId);
      handedBack.push(waiting);
    }
    enqueue(handedBack, true);
  }

  function pump(): void {
    while (writing === 0 && inFlight < MAX_STATEMENTS && queue.length > 0) {
      const next = nextStatement();
      if (!next) return;
      const { batch, lockedRow } = next;
      for (const waiting of batch) {
        clearTimeout(waiting.timer);
        busy.add(waiting.purchase.productoId);
      }
      batchSizes.observe(batch.length);
      inFlight += 1;
      if (lockedRow) lockedInFlight += 1;
      // A statement that waits for a locked row is stalled from the start: the next starts at once.
      let stalled = lockedRow;
      if (!stalled) writing += 1;
      const stall = stalled
        ? undefined
        : setTimeout(() => {
            stalled = true;
            writing -= 1;
            pump();
          }, STALL_MS);
      // One span per statement, in the trace of the batch's first request, linked to all of them.
      const traces = batch.map((waiting) => waiting.trace);
      void inBatchSpan('purchases.batch', traces, () => write(batch, lockedRow)).finally(() => {
        clearTimeout(stall);
        if (!stalled) writing -= 1;
        inFlight -= 1;
        if (lockedRow) lockedInFlight -= 1;
        for (const waiting of batch) busy.delete(waiting.purchase.productoId);
        pump();
      });
    }
  }

  return {
    record(purchase, deadline) {
      return new Promise((resolve, reject) => {
        if (queue.length >= queueMax) return reject(queueFull());
        enqueue([{ purchase, resolve, reject, deadline, trace: captureTraceContext() }], false);
        pump();
      });
    },
    async recordIn(tx, purchase, deadline) {
      const [outcome] = await recordPurchases(tx, [purchase]);
      if (!isLocked(outcome!)) return outcome!;
      if (lockedInFlight >= MAX_STATEMENTS - 1) throw inventoryLocked();
      lockedInFlight += 1;
      try {
        const [waited] = await recordPurchases(tx, [purchase], lockWait(deadline));
        return waited as PurchaseOutcome;
      } catch (err) {
        throw lockNotAvailable(err) ? inventoryLocked() : err;
      } finally {
        lockedInFlight -= 1;
        // A queued purchase of a locked product may have been waiting for this place.
        pump();
      }
    },
  };
}
