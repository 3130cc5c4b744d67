import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';

/**
 * The connection pool's use, read from the pool's own counters when scraped (no cost between
 * scrapes, no query): open connections, idle ones, requests waiting for one, and the configured
 * maximum. Waiting requests while every allowed connection is open is an exhausted pool.
 */
export function registerPoolMetrics(registry: Registry, pool: pg.Pool): void {
  const gauges: [name: string, help: string, read: () => number][] = [
    ['db_pool_connections', 'Connections the pool holds open, idle or in use', () => pool.totalCount],
    ['db_pool_idle_connections', 'Open connections not in use', () => pool.idleCount],
    [
      'db_pool_waiting_requests',
      'Queries and transactions waiting for a connection of the pool',
      () => pool.waitingCount,
    ],
    // pg's own default when no maximum was given.
    [
      'db_pool_max_connections',
      'Connections the pool may open (DATABASE_POOL_MAX)',
      () => pool.options.max ?? 10,
    ],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  }
}
