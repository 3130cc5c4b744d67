/**
 * Every request has a deadline: whatever a dependency does — a Products service that never answers,
 * a statement that never ends, a row locked elsewhere, a pool with no free connection — the answer
 * is a 503 with Retry-After within the deadline (plus a generous margin: the machine is shared), and
 * nothing is written for it.
 */
import type { App } from '@catalogo/kit/app';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import {
  buildInventory,
  createProductIn,
  expectError,
  expectNoWrite,
  type FakeProducts,
  metric,
  purchaseBody,
  type Response,
  send,
  setStockIn,
  startFakeProducts,
  startProducts,
  timed,
} from './helpers.js';

const MARGIN_MS = 2_000;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('inventory');
});
afterAll(async () => {
  await db?.drop();
});

/** Asserts a 503 with Retry-After and the given error code, answered within `withinMs`. */
function expectRefused({ res, ms }: { res: Response; ms: number }, code: string, withinMs: number) {
  const [error] = expectError(res, 503);
  expect(error!.code).toBe(code);
  expect(res.headers['retry-after']).toBe('1');
  expect(ms).toBeLessThan(withinMs);
}

const buy = (app: App, id: number, cantidad: number, key?: string) =>
  send(app, 'POST', '/api/purchases', {
    body: purchaseBody(id, cantidad),
    ...(key ? { headers: { 'idempotency-key': key } } : {}),
  });

const keyState = async (key: string) =>
  (await db.pool.query('SELECT state FROM idempotency_keys WHERE key = $1', [key])).rows[0]?.state;

describe('a Products service that never answers', () => {
  const DEADLINE = 1_500;
  let fake: FakeProducts;
  let app: App;
  beforeAll(async () => {
    fake = await startFakeProducts('hang');
    // Each attempt would wait 5 s, three of them: only the request's deadline makes the answer prompt.
    app = await buildInventory(db.url, fake.url, {
      REQUEST_TIMEOUT_MS: String(DEADLINE),
      PRODUCTS_TIMEOUT_MS: '5000',
      PRODUCTS_RETRIES: '3',
    });
    await db.pool.query('INSERT INTO inventario (producto_id, cantidad) VALUES (1, 10)');
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  it('a purchase, keyed or not, is answered 503 at its deadline and nothing is written', async () => {
    await expectNoWrite(db, async () => {
      const plain = await timed(buy(app, 1, 1));
      const keyed = await timed(buy(app, 1, 1, 'colgado-1'));
      console.log(
        `[deadline] Products hanging: purchases answered in ${plain.ms.toFixed(0)} and ${keyed.ms.toFixed(0)} ms`,
      );
      expectRefused(plain, 'deadline_exceeded', DEADLINE + MARGIN_MS);
      expectRefused(keyed, 'deadline_exceeded', DEADLINE + MARGIN_MS);
      // It waited for Products until the deadline, not less.
      expect(plain.ms).toBeGreaterThanOrEqual(DEADLINE - 50);
    });
    // The key was released: a retry is processed afresh.
    expect(await keyState('colgado-1')).toBeUndefined();
  });

  it('so is a read that needs the product, and the 503s are counted by reason', async () => {
    const before = (await metric(app, 'requests_shed_total', { reason: 'deadline_exceeded' })) ?? 0;
    expectRefused(
      await timed(send(app, 'GET', '/api/inventory/1')),
      'deadline_exceeded',
      DEADLINE + MARGIN_MS,
    );
    expect(await metric(app, 'requests_shed_total', { reason: 'deadline_exceeded' })).toBe(before + 1);
  });
});

describe('a database that does not answer in time', () => {
  const STATEMENT_TIMEOUT = 1_000;
  const LOCK_TIMEOUT = 500;
  let products: Awaited<ReturnType<typeof startProducts>>;
  let app: App;
  let id: number;
  beforeAll(async () => {
    products = await startProducts();
    app = await buildInventory(db.url, products.url, {
      REQUEST_TIMEOUT_MS: '5000',
      DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT),
      DATABASE_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT),
    });
    id = await createProductIn(products.app, 3);
    await setStockIn(app, id, 50);
    // A statement that never ends: a purchase of 7 units sleeps in the database.
    await db.pool.query(`
      CREATE FUNCTION sleep_on_seven() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.cantidad = 7 THEN PERFORM pg_sleep(60); END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER sleep_on_seven BEFORE INSERT ON historial_compras
        FOR EACH ROW EXECUTE FUNCTION sleep_on_seven();`);
  });
  afterAll(async () => {
    await db.pool.query('DROP TRIGGER IF EXISTS sleep_on_seven ON historial_compras');
    await app?.close();
    await products?.close();
  });

  it('a purchase whose statement hangs is cut by the statement timeout: 503, nothing written', async () => {
    await expectNoWrite(db, async () => {
      const plain = await timed(buy(app, id, 7));
      const keyed = await timed(buy(app, id, 7, 'lento-1'));
      console.log(
        `[deadline] statement hanging: purchases answered in ${plain.ms.toFixed(0)} and ${keyed.ms.toFixed(0)} ms`,
      );
      expectRefused(plain, 'database_timeout', STATEMENT_TIMEOUT + MARGIN_MS);
      expectRefused(keyed, 'database_timeout', STATEMENT_TIMEOUT + MARGIN_MS);
    });
    expect(await keyState('lento-1')).toBeUndefined();
    // Other purchases go on.
    expect((await buy(app, id, 1)).statusCode).toBe(201);
  });

  it('an adjustment of a row locked elsewhere is refused after the lock timeout: 503, nothing written', async () => {
    const operator = await db.pool.connect();
    try {
      await operator.query('BEGIN');
      await operator.query('SELECT 1 FROM inventario WHERE producto_id = $1 FOR UPDATE', [id]);
      await expectNoWrite(db, async () => {
        const adjusted = await timed(
          send(app, 'POST', `/api/inventory/${id}/adjustments`, {
            body: { data: { type: 'inventory-adjustments', attributes: { delta: 5 } } },
          }),
        );
        expectRefused(adjusted, 'resource_locked', LOCK_TIMEOUT + MARGIN_MS);
      });
    } finally {
      await operator.query('ROLLBACK');
      operator.release();
    }
  });

  it('a request that finds every pooled connection busy for too long is answered 503, not left waiting', async () => {
    const small = await buildInventory(db.url, products.url, {
      DATABASE_POOL_MAX: '1',
      DATABASE_POOL_TIMEOUT_MS: '300',
      DATABASE_STATEMENT_TIMEOUT_MS: '3000',
    });
    try {
      // The one connection is taken by a purchase whose statement sleeps for 3 s.
      const hanging = buy(small, id, 7);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const waiting = await timed(send(small, 'GET', '/api/purchases'));
      console.log(
        `[deadline] pool exhausted: a read answered ${waiting.res.statusCode} in ${waiting.ms.toFixed(0)} ms`,
      );
      expectRefused(waiting, 'pool_timeout', 300 + MARGIN_MS);
      expect(await metric(small, 'requests_shed_total', { reason: 'pool_timeout' })).toBe(1);
      expectError(await hanging, 503);
    } finally {
      await small.close();
    }
  });
});
