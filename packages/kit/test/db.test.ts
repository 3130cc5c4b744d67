import { EventEmitter } from 'node:events';
import type pg from 'pg';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createPool, withTransaction } from '../src/db.js';
import { createLogger } from '../src/logger.js';

/** A pool of one fake connection that records its statements and can fail on one of them. */
function fakePool(failOn?: string) {
  const statements: string[] = [];
  const releases: (boolean | undefined)[] = [];
  const client = Object.assign(new EventEmitter(), {
    query: async (sql: string) => {
      statements.push(sql);
      if (sql === failOn) throw new Error(`${sql} failed`);
      return { rows: [], rowCount: 0 };
    },
    release: (destroy?: boolean) => void releases.push(destroy),
  });
  const pool = { connect: async () => client } as unknown as pg.Pool;
  return { pool, client, statements, releases };
}

describe('withTransaction', () => {
  it('runs the work between BEGIN and COMMIT on one connection, then releases it for reuse', async () => {
    const { pool, statements, releases } = fakePool();
    const result = await withTransaction(pool, async (tx) => {
      await tx.query('UPDATE inventario SET cantidad = 1');
      return 'done';
    });
    expect(result).toBe('done');
    expect(statements).toEqual(['BEGIN', 'UPDATE inventario SET cantidad = 1', 'COMMIT']);
    expect(releases).toEqual([false]);
  });

  it('rolls back and rethrows the work’s own error', async () => {
    const { pool, statements, releases } = fakePool();
    const failure = new Error('insufficient stock');
    await expect(
      withTransaction(pool, async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(statements).toEqual(['BEGIN', 'ROLLBACK']);
    expect(releases).toEqual([false]);
  });

  it('rolls back when COMMIT fails', async () => {
    const { pool, statements } = fakePool('COMMIT');
    await expect(withTransaction(pool, async () => 1)).rejects.toThrow('COMMIT failed');
    expect(statements).toEqual(['BEGIN', 'COMMIT', 'ROLLBACK']);
  });

  it('destroys a connection whose ROLLBACK failed, and still reports the original error', async () => {
    const { pool, releases } = fakePool('ROLLBACK');
    await expect(
      withTransaction(pool, async () => {
        throw new Error('original');
      }),
    ).rejects.toThrow('original');
    expect(releases).toEqual([true]);
  });

  it('survives the server ending the connection between two queries, and destroys it', async () => {
    const { pool, client, releases } = fakePool();
    await withTransaction(pool, async () => {
      // Without a listener, this 'error' would throw: in a service, an uncaught exception.
      client.emit('error', new Error('terminating connection due to administrator command'));
    });
    expect(releases).toEqual([true]);
    expect(client.listenerCount('error')).toBe(0);
  });
});

describe('createPool', () => {
  const silent = pino({ level: 'silent' });

  it('reads TIMESTAMP columns as ISO 8601 UTC and TIMESTAMPTZ in any zone as UTC', async () => {
    const pool = createPool(
      { connectionString: 'postgres://u@127.0.0.1:1/db', applicationName: 't' },
      silent,
    );
    const types = (pool as unknown as { options: { types: pg.CustomTypesConfig } }).options.types;
    const timestamp = types.getTypeParser(1114, 'text') as (value: string) => unknown;
    const timestamptz = types.getTypeParser(1184, 'text') as (value: string) => unknown;
    expect(timestamp('2026-11-28 10:00:00.123456')).toBe('2026-11-28T10:00:00.123Z');
    expect(timestamp('2026-11-28 10:00:00')).toBe('2026-11-28T10:00:00.000Z');
    expect(timestamptz('2026-11-28 11:00:00.5+01')).toBe('2026-11-28T10:00:00.500Z');
    // Everything else keeps node-postgres' own parsing (int4 here).
    expect((types.getTypeParser(23, 'text') as (value: string) => unknown)('42')).toBe(42);
    await pool.end();
  });

  it('logs, instead of crashing on, an idle connection that the server dropped', async () => {
    const log = pino({ level: 'silent' });
    const warn = vi.spyOn(log, 'warn');
    const pool = createPool({ connectionString: 'postgres://u@127.0.0.1:1/db', applicationName: 't' }, log);
    const lost = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
    });
    pool.emit('error', lost, {} as pg.PoolClient);
    expect(warn).toHaveBeenCalledTimes(1);
    const [fields, message] = warn.mock.calls[0] as unknown as [Record<string, unknown>, string];
    expect(message).toBe('idle database connection lost');
    expect(fields).toMatchObject({ code: '57P01', message: lost.message });
    await pool.end();
  });

  it('defaults to ten connections and a bounded wait for one', async () => {
    const pool = createPool(
      { connectionString: 'postgres://u@127.0.0.1:1/db', applicationName: 't' },
      silent,
    );
    const options = (pool as unknown as { options: { max: number; connectionTimeoutMillis: number } })
      .options;
    expect(options.max).toBe(10);
    expect(options.connectionTimeoutMillis).toBeGreaterThan(0);
    await pool.end();
  });
});

describe('createLogger', () => {
  it('logs at the given level and names the service on every line', () => {
    const logger = createLogger('products', 'debug', true);
    expect(logger.level).toBe('debug');
    expect(logger.bindings()).toMatchObject({ service: 'products' });
  });
});
