import { withTransaction } from '@catalogo/kit/db';
import type pg from 'pg';
import { Histogram, type Registry } from 'prom-client';
import { type NewPurchase, type PurchaseOutcome, recordPurchase } from './purchases.repository.js';

/** Purchases recorded by one transaction at most, so that one batch never holds its locks long. */
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
 * Group commit. Every purchase is its own transaction on the stock row of its product, and its
 * commit — the WAL flush above all — cost PostgreSQL more than the purchase itself; purchases of
 * one product also queue on that row, one commit each. Here a purchase runs at once, alone, when no
 * other is being recorded by this instance; the ones that arrive meanwhile wait, then run together
 * in one transaction, each as the very same conditional statement — so each is granted or refused
 * exactly as it would have been on its own, after the ones of its product that came before it —
 * and commit together: one commit for the lot.
 *
 * Within a batch the statements run in product order (stable, so a product's purchases keep their
 * arrival order): every batch, of this instance or another, locks stock rows in the same order, and
 * a single-row purchase, set or adjustment holds one row only, so no two can wait for each other in
 * a cycle.
 *
 * A batch is atomic: if it fails (the database went away), every purchase of it fails and none is
 * recorded, as each would have alone. Nothing can fail for one purchase only: totals are checked
 * before anything reaches the database, and a missing stock row is a refusal, not an error.
 */
export function createPurchaseRecorder(pool: pg.Pool, registry?: Registry): PurchaseRecorder {
  // Whether a purchase or a batch is being recorded, and the purchases waiting for it to end.
  let inFlight = false;
  const waiting: Waiting[] = [];
  const batchSizes = new Histogram({
    name: 'purchase_batch_size',
    help: 'Purchases recorded by one transaction that waited for a purchase in flight',
    buckets: [1, 2, 4, 8, 16, 32],
    registers: registry ? [registry] : [],
  });

  async function recordBatch(batch: Waiting[]): Promise<void> {
    batchSizes.observe(batch.length);
    const ordered = [...batch].sort((a, b) => a.purchase.productoId - b.purchase.productoId);
    try {
      const outcomes =
        ordered.length === 1
          ? [await recordPurchase(pool, ordered[0]!.purchase)]
          : await withTransaction(pool, async (tx) => {
              const results: PurchaseOutcome[] = [];
              for (const { purchase } of ordered) results.push(await recordPurchase(tx, purchase));
              return results;
            });
      for (const [index, w] of ordered.entries()) w.resolve(outcomes[index]!);
    } catch (err) {
      for (const w of ordered) w.reject(err);
    }
  }

  async function drain(): Promise<void> {
    while (waiting.length > 0) await recordBatch(waiting.splice(0, MAX_BATCH));
    // No await between the last check and this: a purchase arriving now finds nothing in flight.
    inFlight = false;
  }

  return {
    async record(purchase) {
      if (inFlight) return new Promise((resolve, reject) => waiting.push({ purchase, resolve, reject }));
      inFlight = true;
      try {
        return await recordPurchase(pool, purchase);
      } finally {
        void drain();
      }
    },
  };
}
