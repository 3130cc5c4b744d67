/**
 * The stock ledger: every change of a product's stock writes one movement in its own transaction,
 * and Σ delta = cantidad, Σ delta_reservado = reservado hold for every product. Guarded against: a
 * kind of change that forgets its movement, a movement written for a change that rolled back, the
 * ledger being rewritten, stock that existed before the ledger missing from it, and pages that skip
 * or repeat movements while new ones arrive.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { migrate } from '@catalogo/kit/db';
import pg from 'pg';
import pino from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { MIGRATIONS_DIR } from '../src/migrations.js';
import {
  adjustmentBody,
  expectError,
  expectLedgerBalanced,
  expectNoWrite,
  ISO_UTC,
  purchaseBody,
  send,
  setBody,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();
const LEDGER_MIGRATION = '1764700000000_stock-ledger.sql';

const movements = (id: number, query = '') =>
  send(ctx.app(), 'GET', `/api/inventory/${id}/movements${query}`);

describe('GET /api/inventory/{id}/movements', () => {
  it('lists a set, an adjustment and a purchase newest first, each with its values after and its source', async () => {
    const id = await ctx.createProduct(2.5);
    expect(
      (await send(ctx.app(), 'PATCH', `/api/inventory/${id}`, { body: setBody(id, { cantidad: 10 }) }))
        .statusCode,
    ).toBe(200);
    const adjusted = await send(ctx.app(), 'POST', `/api/inventory/${id}/adjustments`, {
      body: adjustmentBody({ delta: -3, reason: 'Rotura' }),
    });
    expect(adjusted.statusCode).toBe(201);
    const bought = await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 2) });
    expect(bought.statusCode).toBe(201);

    const res = await movements(id);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const attributes = (causa: string, delta: number, cantidad: number, reason: string | null = null) => ({
      producto_id: id,
      causa,
      delta,
      delta_reservado: 0,
      cantidad,
      reservado: 0,
      reason,
      created_at: expect.stringMatching(ISO_UTC),
    });
    expect(body.data).toEqual([
      {
        type: 'inventory-movements',
        id: expect.stringMatching(/^[1-9][0-9]*$/),
        attributes: attributes('purchase', -2, 5),
        relationships: { source: { data: { type: 'purchases', id: bought.json().data.id } } },
      },
      {
        type: 'inventory-movements',
        id: expect.any(String),
        attributes: attributes('adjustment', -3, 7, 'Rotura'),
        relationships: { source: { data: null } },
      },
      {
        type: 'inventory-movements',
        id: expect.any(String),
        attributes: attributes('set', 10, 10),
        relationships: { source: { data: null } },
      },
    ]);
    expect(body.links).toEqual({
      self: `/api/inventory/${id}/movements?page[size]=20`,
      first: `/api/inventory/${id}/movements?page[size]=20`,
      prev: null,
      next: null,
    });
    await expectLedgerBalanced(ctx.db());
  });

  it('follows links.next over every movement exactly once while new ones arrive between pages', async () => {
    const id = await ctx.createProduct(1);
    await ctx.setStock(id, 100);
    for (let i = 0; i < 6; i++)
      await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 1) });
    const seen: string[] = [];
    let next: string | null = `/api/inventory/${id}/movements?page[size]=3`;
    let pages = 0;
    while (next) {
      const res = await send(ctx.app(), 'GET', next);
      expect(res.statusCode).toBe(200);
      seen.push(...res.json().data.map((m: { id: string }) => m.id));
      next = res.json().links.next;
      // A purchase between pages lands before the first page: the cursor never moves.
      if (pages++ === 0) await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 1) });
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
    expect(seen.map(Number)).toEqual([...seen.map(Number)].sort((a, b) => b - a));
  });

  it('answers an empty ledger for a product without stock, 404 for a product that does not exist', async () => {
    const id = await ctx.createProduct(1);
    const empty = await movements(id);
    expect(empty.statusCode).toBe(200);
    expect(empty.json().data).toEqual([]);
    expectError(await movements(1_999_999_999), 404);
    // A cursor does not make an unknown product a known one.
    expectError(await movements(1_999_999_999, '?page[after]=1'), 404);
  });

  it.each([
    ['abc', '', { parameter: 'id' }],
    ['0', '', { parameter: 'id' }],
    ['1', '?page[size]=0', { parameter: 'page[size]' }],
    ['1', '?page[size]=101', { parameter: 'page[size]' }],
    ['1', '?page[after]=x', { parameter: 'page[after]' }],
    ['1', '?sort=id', { parameter: 'sort' }],
  ])('400 for /api/inventory/%s/movements%s', async (id, query, source) => {
    expectError(await send(ctx.app(), 'GET', `/api/inventory/${id}/movements${query}`), 400, source);
  });

  it('401 without a key', async () => {
    const res = await send(ctx.app(), 'GET', '/api/inventory/1/movements', {
      headers: { 'x-api-key': undefined },
    });
    expectError(res, 401);
  });
});

describe('the ledger itself', () => {
  it('writes nothing for a refused change: an adjustment below 0, a purchase of more than there is', async () => {
    const id = await ctx.createProduct(1);
    await ctx.setStock(id, 2);
    await expectNoWrite(ctx.db(), async () => {
      const count = await ctx.db().pool.query('SELECT count(*)::int AS n FROM movimientos_inventario');
      expectError(
        await send(ctx.app(), 'POST', `/api/inventory/${id}/adjustments`, {
          body: adjustmentBody({ delta: -3 }),
        }),
        409,
      );
      expectError(await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 3) }), 409);
      const after = await ctx.db().pool.query('SELECT count(*)::int AS n FROM movimientos_inventario');
      expect(after.rows[0].n).toBe(count.rows[0].n);
    });
  });

  it('cannot be rewritten or purged', async () => {
    const id = await ctx.createProduct(1);
    await ctx.setStock(id, 4);
    await expect(
      ctx.db().pool.query('UPDATE movimientos_inventario SET delta = 0 WHERE producto_id = $1', [id]),
    ).rejects.toThrow(/no se modifica/);
    await expect(
      ctx.db().pool.query('DELETE FROM movimientos_inventario WHERE producto_id = $1', [id]),
    ).rejects.toThrow(/no se modifica/);
    await expect(ctx.db().pool.query('TRUNCATE movimientos_inventario')).rejects.toThrow(/no se modifica/);
  });

  it('keeps cantidad and reservado within 0 and the maximum by itself: CHECK constraints', async () => {
    const id = await ctx.createProduct(1);
    await ctx.setStock(id, 1);
    for (const column of ['cantidad', 'reservado']) {
      await expect(
        ctx.db().pool.query(`UPDATE inventario SET ${column} = -1 WHERE producto_id = $1`, [id]),
      ).rejects.toThrow(/check constraint/);
    }
  });
});

describe('the migration that starts the ledger', () => {
  it('writes an opening movement for every stock row that existed, so the books hold from the start', async () => {
    const adminUrl = inject('adminUrl');
    const run = inject('templates').inventory.split('_').slice(2).join('_');
    const name = `t_inventory_${run}_ledger${randomBytes(3).toString('hex')}`;
    const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
    const before = await mkdtemp(join(tmpdir(), 'migrations-'));
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    const client = new pg.Client({ connectionString: url });
    try {
      // The migrations before the ledger, then stock written the old way, then the rest.
      for (const file of await readdir(MIGRATIONS_DIR)) {
        if (file < LEDGER_MIGRATION) await cp(join(MIGRATIONS_DIR, file), join(before, file));
      }
      const silent = pino({ level: 'silent' });
      await migrate(url, before, silent);
      await client.connect();
      await client.query('INSERT INTO inventario (producto_id, cantidad) VALUES (1, 40), (2, 0), (3, 7)');
      await migrate(url, MIGRATIONS_DIR, silent);
      const { rows } = await client.query(
        `SELECT producto_id, causa, delta, delta_reservado, cantidad, reservado, source_type
         FROM movimientos_inventario ORDER BY producto_id`,
      );
      expect(rows).toEqual(
        [
          [1, 40],
          [2, 0],
          [3, 7],
        ].map(([producto_id, cantidad]) => ({
          producto_id,
          causa: 'opening',
          delta: cantidad,
          delta_reservado: 0,
          cantidad,
          reservado: 0,
          source_type: null,
        })),
      );
      expect((await client.query('SELECT reservado FROM inventario')).rows).toEqual([
        { reservado: 0 },
        { reservado: 0 },
        { reservado: 0 },
      ]);
    } finally {
      await client.end().catch(() => {});
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
      await rm(before, { recursive: true, force: true });
    }
  });
});

describe('npm run audit:ledger', () => {
  const script = fileURLToPath(new URL('../src/audit-ledger.ts', import.meta.url));
  const audit = (databaseUrl: string) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', '--conditions=source', script], {
      env: { ...process.env, DATABASE_URL: databaseUrl },
    }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );

  it('exits 0 when the books hold and 1, naming the product, when a stock changed behind the ledger', async () => {
    const id = await ctx.createProduct(1);
    await ctx.setStock(id, 5);
    const sound = await audit(ctx.db().url);
    expect(sound).toMatchObject({ code: 0, stdout: expect.stringContaining('Libro de stock correcto') });

    await ctx.db().pool.query('UPDATE inventario SET cantidad = cantidad + 1 WHERE producto_id = $1', [id]);
    try {
      const broken = await audit(ctx.db().url);
      expect(broken.code).toBe(1);
      expect(broken.stdout).toContain(`producto ${id}: cantidad 6, Σ delta 5`);
    } finally {
      await ctx.db().pool.query('UPDATE inventario SET cantidad = cantidad - 1 WHERE producto_id = $1', [id]);
    }
  });
});
