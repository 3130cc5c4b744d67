import { withTransaction } from '@catalogo/kit/db';
import type pg from 'pg';
import { Histogram, type Registry } from 'prom-client';
import { type NewPurchase, type PurchaseOutcome, recordPurchase } from './purchases.repository.js';

/** Purchases of one product recorded by one transaction at most. */
export const MAX_BATCH = 32;

export interface PurchaseRecorder {
  /** Records a purchase exactly as `recordPurchase` does, possibly in one transaction with others. */
  record(purchase: NewPurchase): Promise<PurchaseOutcome>;
}

interface Waiting {
  purchase: NewPurchase;
  resolve: (outcome: PurchaseOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for a product bought by many at once. Purchases of one product serialise on its
 * stock row: each waits for the previous one's commit, WAL flush included, so a hot product sold one
 * purchase per commit however many buyers waited. Here a purchase whose product has none in flight
 * in this instance runs at once, alone, as before; the ones of that product that arrive meanwhile
 * wait, then run in one transaction, in arrival order, each as the very same statement — so each is
 * granted or refused exactly as it would have been on its own, after the ones before it — and commit
 * together: one lock wait and one flush for the lot.
 *
 * Per product, not for the whole instance: a purchase held up (its row locked by someone else, a
 * slow statement) only holds up buyers of its product, who would have queued on that row anyway.
 *
 * If a statement of a batch fails, the transaction rolls back and its purchases are recorded again
 * each on its own, concurrently, as if they had never been batched: one that cannot be recorded then
 * fails alone, not its neighbours. If the commit itself fails, whether it happened is unknown, so
 * each purchase fails, as a single purchase whose commit fails does.
 */
export function createPurchaseRecorder(pool: pg.Pool, registry?: Registry): PurchaseRecorder {
  // Products with a purchase in flight in this instance, with the purchases waiting behind it.
  const queues = new Map<number, Waiting[]>();
  const batchSizes = new Histogram({
    name: 'purchase_batch_size',
    help: 'Purchases of one product recorded by one transaction after waiting for one in flight',
    buckets: [1, 2, 4, 8, 16, 32],
    registers: registry ? [registry] : [],
  });

  async function recordBatch(batch: Waiting[]): Promise<void> {
    batchSizes.observe(batch.length);
    if (batch.length > 1) {
      let statementFailed = false;
      try {
        const outcomes = await withTransaction(pool, async (tx) => {
          const results: PurchaseOutcome[] = [];
          for (const { purchase } of batch) {
            results.push(
              await recordPurchase(tx, purchase).catch((err: unknown) => {
                statementFailed = true;
                throw err;
              }),
            );
          }
          return results;
        });
        for (const [index, waiting] of batch.entries()) waiting.resolve(outcomes[index]!);
        return;
      } catch (err) {
        // Only a statement's failure proves that nothing was recorded: the transaction is rolled
        // back. A failed COMMIT may have committed all the same, and recording again could sell twice.
        if (!statementFailed) {
          for (const waiting of batch) waiting.reject(err);
          return;
        }
      }
    }
    await Promise.all(
      batch.map(({ purchase, resolve, reject }) => recordPurchase(pool, purchase).then(resolve, reject)),
    );
  }

  async function drain(productoId: number, waiting: Waiting[]): Promise<void> {
    try {
      while (waiting.length > 0) await recordBatch(waiting.splice(0, MAX_BATCH));
    } finally {
      // No await between the last check and this: a purchase arriving now finds no queue and runs.
      queues.delete(productoId);
    }
  }

  return {
    async record(purchase) {
      const waiting = queues.get(purchase.productoId);
      if (waiting) return new Promise((resolve, reject) => waiting.push({ purchase, resolve, reject }));
      const queue: Waiting[] = [];
      queues.set(purchase.productoId, queue);
      try {
        return await recordPurchase(pool, purchase);
      } finally {
        void drain(purchase.productoId, queue);
      }
    },
  };
}
