import { withTransaction } from '@catalogo/kit/db';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { StockChanges } from '../stock/stock.metrics.js';
import { giveBack, lockDue } from './reservations.repository.js';

export interface SweeperOptions {
  pool: pg.Pool;
  log: Logger;
  /** How often to look for reservations past their time; expiry happens within this of `expira_at`. */
  intervalMs: number;
  /** Reservations expired per transaction at most. */
  batch?: number;
  /** `reservations_expired_total`: the reservations this instance expired. */
  expired: Counter;
  stockChanges: StockChanges;
}

/**
 * Expires reservations past their time with no request needed. Every instance runs one: each sweep
 * locks the due reservations with FOR UPDATE SKIP LOCKED, so sweepers of several instances share the
 * work without waiting for each other and none is expired twice, and a reservation being confirmed or
 * cancelled at that moment is left to that request. Each instance counts what its own transactions
 * committed, so `reservations_expired_total` summed over instances is exact.
 */
export function startReservationSweeper(options: SweeperOptions): { stop: () => Promise<void> } {
  const batch = options.batch ?? 100;
  let running: Promise<void> | undefined;
  let stopped = false;

  /** One transaction: up to `batch` due reservations give their units back (ledger `expiry`). */
  async function expireBatch(): Promise<number> {
    const due = await withTransaction(options.pool, async (tx) => {
      const locked = await lockDue(tx, batch);
      if (locked.length > 0)
        await giveBack(
          tx,
          locked.map((reservation) => reservation.id),
          'expiry',
        );
      return locked;
    });
    // Committed: counted now, never for a sweep that rolled back.
    options.expired.inc(due.length);
    options.stockChanges.inc(
      { causa: 'expiry' },
      due.reduce((sum, reservation) => sum + reservation.lineas, 0),
    );
    return due.length;
  }

  async function sweep(): Promise<void> {
    let expired = 0;
    for (;;) {
      const n = await expireBatch();
      expired += n;
      if (n < batch || stopped) break;
    }
    if (expired > 0) options.log.info({ expired }, 'reservations expired');
  }

  const timer = setInterval(() => {
    running ??= sweep()
      .catch((err: unknown) => options.log.warn({ err }, 'reservation sweep failed; it will run again'))
      .finally(() => {
        running = undefined;
      });
  }, options.intervalMs);
  // Never the reason the process stays alive.
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
