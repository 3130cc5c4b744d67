import type pg from 'pg';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerPoolMetrics } from '../src/pool-metrics.js';

describe('pool metrics', () => {
  it('show busy and idle connections and the requests waiting for one, as they are at scrape time', async () => {
    const pool = { totalCount: 10, idleCount: 0, waitingCount: 0 };
    const registry = new Registry();
    registerPoolMetrics(pool as unknown as pg.Pool, registry);
    pool.waitingCount = 7;
    let text = await registry.metrics();
    expect(text).toMatch(/^db_pool_waiting 7$/m);
    expect(text).toMatch(/^db_pool_connections\{state="busy"\} 10$/m);
    expect(text).toMatch(/^db_pool_connections\{state="idle"\} 0$/m);
    Object.assign(pool, { totalCount: 3, idleCount: 2, waitingCount: 0 });
    text = await registry.metrics();
    expect(text).toMatch(/^db_pool_waiting 0$/m);
    expect(text).toMatch(/^db_pool_connections\{state="busy"\} 1$/m);
    expect(text).toMatch(/^db_pool_connections\{state="idle"\} 2$/m);
  });
});
