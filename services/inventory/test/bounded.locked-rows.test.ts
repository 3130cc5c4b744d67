/**
 * Bounded answers with stock rows locked elsewhere: an operator's open transaction holds more rows
 * than the writer has statements. Purchases of other products must still be answered at once, those
 * of the locked rows within the request's deadline, and a purchase refused with a 503 must have left
 * nothing behind: no history row, no event, no completed idempotency record.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MAX_STATEMENTS } from '../src/purchases/purchases.batcher.js';
import { expectError, historyOf, purchaseBody, send, stockOf, timed, useInventoryApp } from './helpers.js';

const REQUEST_TIMEOUT_MS = 4_000;
// Waits for a locked row longer than the second a free product may take: only statements left free
// for the other products can sell it in time.
const ctx = useInventoryApp({
  REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  DATABASE_LOCK_TIMEOUT_MS: '2500',
});

const buy = (id: number, cantidad: number, key?: string) =>
  send(ctx.app(), 'POST', '/api/purchases', {
    body: purchaseBody(id, cantidad),
    ...(key ? { headers: { 'idempotency-key': key } } : {}),
  });

describe('stock rows locked by another connection', () => {
  it('more locked rows than the writer has statements: other products are sold at once, locked ones answered in time, nothing written for a 503', async () => {
    const INITIAL = 20;
    const locked = [];
    for (let i = 0; i < MAX_STATEMENTS + 2; i++) locked.push(await ctx.createProduct(2.5, `Bloqueado ${i}`));
    const free = await ctx.createProduct(4, 'Libre');
    for (const id of [...locked, free]) await ctx.setStock(id, INITIAL);

    // An operator's open transaction holds the locked products' stock rows.
    const operator = new pg.Client({ connectionString: ctx.db().url });
    await operator.connect();
    await operator.query('BEGIN');
    await operator.query('SELECT * FROM inventario WHERE producto_id = ANY($1::int[]) FOR UPDATE', [locked]);
    try {
      const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      const sellsFreeProduct = async (n: number) => {
        const { res, ms } = await timed(buy(free, n));
        console.log(
          `[locked-rows] a purchase of the free product beside ${locked.length} locked rows: ${res.statusCode} in ${ms.toFixed(0)} ms`,
        );
        expect(res.statusCode, res.body).toBe(201);
        expect(ms).toBeLessThan(1_000);
      };
      // Two purchases of each locked product; time enough for them to take every statement the
      // writer would give them; then the free product.
      const held = locked.flatMap((id) => [1, 2].map((n) => timed(buy(id, n))));
      await pause(1_000);
      for (const n of [1, 2]) await sellsFreeProduct(n);
      // Then one keyed purchase of each locked product: their own transactions wait by the same rules.
      held.push(...locked.map((id) => timed(buy(id, 1, `bloqueado-${id}`))));
      await pause(300);
      await sellsFreeProduct(3);

      // Every purchase of a locked row is answered while the lock is still held: 503, in time.
      const answers = await Promise.all(held);
      const slowest = Math.max(...answers.map((a) => a.ms));
      console.log(
        `[locked-rows] ${answers.length} purchases of locked rows: ${answers.map((a) => a.res.json().errors?.[0]?.code ?? a.res.statusCode).join(', ')}; slowest ${slowest.toFixed(0)} ms`,
      );
      for (const { res } of answers) {
        const [error] = expectError(res, 503);
        expect(res.headers['retry-after']).toBe('1');
        expect(['inventory_locked', 'deadline_exceeded']).toContain(error!.code);
      }
      // The deadline, plus a generous margin for a machine shared with other test files.
      expect(slowest).toBeLessThan(REQUEST_TIMEOUT_MS + 2_000);
      // The keyed ones left no completed record: a retry is processed afresh.
      const keys = await ctx
        .db()
        .pool.query(`SELECT key, state FROM idempotency_keys WHERE key LIKE 'bloqueado-%'`);
      expect(keys.rows).toEqual([]);
    } finally {
      await operator.query('ROLLBACK');
      await operator.end();
    }

    // Nothing was recorded for the 503s: the books are exactly as before for the locked products.
    for (const id of locked) {
      expect(await stockOf(ctx.db(), id)).toBe(INITIAL);
      expect(await historyOf(ctx.db(), id)).toEqual({ rows: 0, units: 0 });
      const events = await ctx
        .db()
        .pool.query(
          "SELECT count(*)::int AS n FROM outbox WHERE producto_id = $1 AND data->>'causa' IS DISTINCT FROM 'set'",
          [id],
        );
      expect(events.rows[0].n).toBe(0);
    }
    expect(await stockOf(ctx.db(), free)).toBe(INITIAL - 6);
    expect(await historyOf(ctx.db(), free)).toEqual({ rows: 3, units: 6 });

    // Once the lock is gone, the same keyed requests are processed and the books stay exact.
    for (const id of locked) {
      const res = await buy(id, 1, `bloqueado-${id}`);
      expect(res.statusCode, res.body).toBe(201);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      expect((await stockOf(ctx.db(), id))! + (await historyOf(ctx.db(), id)).units).toBe(INITIAL);
    }
  });
});
