import type pg from 'pg';
import type { Logger } from 'pino';
import { expireDue } from './reservations.repository.js';

export interface SweeperOptions {
  pool: pg.Pool;
  log: Logger;
  /** How often to look for reservations past their time; expiry happens within this of `expira_at`. */
  intervalMs: number;
  /** Reservations expired per transaction at most. */
  batch?: number;
}

/**
 * Expires reservations past their time with no request needed. Every instance runs one: each sweep
 * takes the due reservations with FOR UPDATE SKIP LOCKED (`expirar_reservas`), so sweepers of
 * several instances share the work without waiting for each other and none is expired twice, and a
 * reservation being confirmed or cancelled at that moment is left to that request.
 */
export function startReservationSweeper(options: SweeperOptions): { stop: () => Promise<void> } {
  const batch = options.batch ?? 100;
  let running: Promise<void> | undefined;
  let stopped = false;

  async function sweep(): Promise<void> {
    let expired = 0;
    for (;;) {
      const n = await expireDue(options.pool, batch);
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
