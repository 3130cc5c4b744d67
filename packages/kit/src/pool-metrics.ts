import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';

/**
 * The database pool as `/metrics` shows it, read at scrape time: connections busy and idle, and
 * requests waiting for one — a pool that keeps requests waiting is the first sign of saturation.
 */
export function registerPoolMetrics(pool: pg.Pool, registry: Registry): void {
  new Gauge({
    name: 'db_pool_connections',
    help: 'Database connections of the pool, by state, at scrape time',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.set({ state: 'busy' }, pool.totalCount - pool.idleCount);
      this.set({ state: 'idle' }, pool.idleCount);
    },
  });
  new Gauge({
    name: 'db_pool_waiting',
    help: 'Requests waiting for a database connection, at scrape time',
    registers: [registry],
    collect() {
      this.set(pool.waitingCount);
    },
  });
}
