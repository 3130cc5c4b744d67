import type pg from 'pg';
import type { Logger } from 'pino';
import { purgeKeys } from './idempotency/idempotency.repository.js';
import { purgeDelivered } from './outbox/outbox.repository.js';

export interface HousekeepingOptions {
  pool: pg.Pool;
  log: Logger;
  idempotencyTtlHours: number;
  outboxRetentionHours: number;
  intervalMs?: number;
}

/** Deletes expired idempotency keys and long-delivered outbox rows. */
export async function purgeExpired(options: HousekeepingOptions): Promise<{ keys: number; events: number }> {
  const keys = await purgeKeys(options.pool, options.idempotencyTtlHours);
  const events = await purgeDelivered(options.pool, options.outboxRetentionHours);
  if (keys + events > 0)
    options.log.info({ keys, events }, 'purged expired idempotency keys and outbox rows');
  return { keys, events };
}

/**
 * Runs `purgeExpired` every interval (15 minutes by default). Every instance runs it: the deletes
 * are idempotent and bounded, so no coordination is needed.
 */
export function startHousekeeping(options: HousekeepingOptions): { stop: () => Promise<void> } {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(
    () => {
      running ??= purgeExpired(options)
        .catch((err: unknown) => options.log.warn({ err }, 'housekeeping failed; it will run again'))
        .finally(() => {
          running = undefined;
        });
    },
    options.intervalMs ?? 15 * 60_000,
  );
  // Never the reason the process stays alive.
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
