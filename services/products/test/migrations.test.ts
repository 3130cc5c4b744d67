import { randomBytes } from 'node:crypto';
import { migrate } from '@catalogo/kit/db';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MIGRATIONS_DIR } from '../src/migrations.js';
import { useProductsApp } from './helpers.js';

const ctx = useProductsApp();
const silent = pino({ level: 'silent' });

describe('migrations', () => {
  const adminUrl = inject('adminUrl');
  // Named like the clones of test/support/database.ts, so the run's clean-up finds it if we do not.
  const run = inject('templates').products.split('_').slice(2).join('_');
  const name = `t_products_${run}_empty${randomBytes(3).toString('hex')}`;
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
  });

  afterAll(async () => {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  });

  it('several instances migrating an empty database at once apply each migration exactly once', async () => {
    await Promise.all([1, 2, 3, 4].map(() => migrate(url, MIGRATIONS_DIR, silent)));
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string; n: number }>(
        'SELECT name, count(*)::int AS n FROM pgmigrations GROUP BY name',
      );
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.n === 1)).toBe(true);
      const table = await client.query("SELECT to_regclass('public.productos') AS t");
      expect(table.rows[0].t).toBe('productos');
    } finally {
      await client.end();
    }
  });

  it('migrating an up-to-date database changes nothing', async () => {
    const before = await ctx.db().pool.query('SELECT name, run_on FROM pgmigrations ORDER BY id');
    await migrate(ctx.db().url, MIGRATIONS_DIR, silent);
    const after = await ctx.db().pool.query('SELECT name, run_on FROM pgmigrations ORDER BY id');
    expect(after.rows).toEqual(before.rows);
  });
});

describe('the productos table guards its own rules', () => {
  const insert = (nombre: string, precio: string, descripcion: string | null = null) =>
    ctx
      .db()
      .pool.query('INSERT INTO productos (nombre, precio, descripcion) VALUES ($1, $2, $3)', [
        nombre,
        precio,
        descripcion,
      ]);

  it.each([
    ['a zero precio', () => insert('a', '0'), '23514'],
    ['a negative precio', () => insert('a', '-1'), '23514'],
    ['a precio over DECIMAL(10,2)', () => insert('a', '100000000.00'), '22003'],
    ['a blank nombre', () => insert('   ', '1'), '23514'],
    ['a nombre over 255 characters', () => insert('x'.repeat(256), '1'), '22001'],
    ['a descripcion over 5000 characters', () => insert('a', '1', 'x'.repeat(5001)), '23514'],
  ])('refuses %s', async (_label, write, code) => {
    await expect(write()).rejects.toMatchObject({ code });
  });

  it('keeps exactly two decimals', async () => {
    const { rows } = await ctx
      .db()
      .pool.query(
        "INSERT INTO productos (nombre, precio) VALUES ('a', 0.1) RETURNING precio::text AS precio",
      );
    expect(rows[0].precio).toBe('0.10');
  });
});
