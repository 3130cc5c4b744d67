import pino from 'pino';
import { Registry } from 'prom-client';
import { expect, inject, it } from 'vitest';
import { createPool } from '../src/db.js';
import { registerPoolMetrics } from '../src/pool-metrics.js';

async function gauges(registry: Registry): Promise<Record<string, number>> {
  const metrics = await registry.getMetricsAsJSON();
  return Object.fromEntries(metrics.map((m) => [m.name, Number(m.values[0]?.value)]));
}

it('reports, at scrape time, the open, idle and waiting connections of a pool and its maximum', async () => {
  const pool = createPool(
    { connectionString: inject('adminUrl'), max: 2, applicationName: 'pool-metrics' },
    pino({ level: 'silent' }),
  );
  const registry = new Registry();
  registerPoolMetrics(registry, pool);
  try {
    expect(await gauges(registry)).toEqual({
      db_pool_connections: 0,
      db_pool_idle_connections: 0,
      db_pool_waiting_requests: 0,
      db_pool_max_connections: 2,
    });

    const held = [await pool.connect(), await pool.connect()];
    const idleOne = held.pop()!;
    idleOne.release();
    expect(await gauges(registry)).toMatchObject({ db_pool_connections: 2, db_pool_idle_connections: 1 });

    // Exhausted: both connections in use, two queries waiting for one.
    const busy = await pool.connect();
    const waiting = [pool.query('SELECT 1'), pool.query('SELECT 2')];
    expect(await gauges(registry)).toEqual({
      db_pool_connections: 2,
      db_pool_idle_connections: 0,
      db_pool_waiting_requests: 2,
      db_pool_max_connections: 2,
    });
    for (const client of [...held, busy]) client.release();
    await Promise.all(waiting);
    expect(await gauges(registry)).toMatchObject({ db_pool_waiting_requests: 0 });
  } finally {
    await pool.end();
  }
});
