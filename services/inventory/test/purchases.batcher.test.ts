/**
 * Group commit: the purchases that arrive while a statement is being written are recorded together
 * by the next one. Races guarded against: a batched purchase judged otherwise than it would have been
 * alone (overselling, or a refusal that should have been a sale), a product's purchases overtaking
 * each other, a batch recorded twice after a failure, two batches deadlocking, and one statement held
 * up on a locked row holding up the whole instance.
 */
import { withTransaction } from '@catalogo/kit/db';
import { Deadline } from '@catalogo/kit/deadline';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import {
  createPurchaseRecorder,
  MAX_BATCH,
  MAX_STATEMENTS,
  STALL_MS,
} from '../src/purchases/purchases.batcher.js';
import {
  type NewPurchase,
  type PurchaseOutcome,
  type RowLocked,
  recordPurchase,
  recordPurchases,
} from '../src/purchases/purchases.repository.js';
import { ledgerMismatches, moveStock } from '../src/stock/stock.repository.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('inventory');
});
afterAll(async () => {
  await db?.drop();
});

let nextId = 5000;
async function stocked(cantidad: number): Promise<number> {
  const id = nextId++;
  await db.pool.query('INSERT INTO inventario (producto_id, cantidad) VALUES ($1, 0)', [id]);
  await moveStock(db.pool, { productoId: id, causa: 'set', delta: cantidad });
  return id;
}

const buy = (productoId: number, cantidad: number): NewPurchase => ({
  productoId,
  cantidad,
  unitario: '2.50',
  total: (2.5 * cantidad).toFixed(2),
});

async function books(id: number) {
  const { rows } = await db.pool.query<{ stock: number; sold: number; rows: number; events: number }>(
    `SELECT (SELECT cantidad FROM inventario WHERE producto_id = $1) AS stock,
            (SELECT coalesce(sum(cantidad), 0)::int FROM historial_compras WHERE producto_id = $1) AS sold,
            (SELECT count(*)::int FROM historial_compras WHERE producto_id = $1) AS rows,
            (SELECT count(*)::int FROM outbox
              WHERE producto_id = $1 AND data->>'causa' IS DISTINCT FROM 'set') AS events`,
    [id],
  );
  return rows[0]!;
}

/** Statements written, and the purchases they recorded. */
async function statements(registry: Registry): Promise<{ count: number; sum: number }> {
  const values = (await registry.getSingleMetric('purchase_batch_size')!.get()).values as {
    metricName?: string;
    value: number;
  }[];
  const of = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
  return { count: of('purchase_batch_size_count'), sum: of('purchase_batch_size_sum') };
}

const summary = (outcome: PurchaseOutcome | RowLocked) =>
  outcome.ok ? { ok: true, cantidad: outcome.purchase.cantidad, restante: outcome.restante } : outcome;

/** A pool (the test database's by default), each query of it passed through `around`, which runs it with `run`. */
const poolThrough = (
  around: (config: pg.QueryConfig, run: () => Promise<pg.QueryResult>) => Promise<pg.QueryResult>,
  base: pg.Pool = db.pool,
) =>
  ({
    query: (config: pg.QueryConfig, values?: unknown[]) => around(config, () => base.query(config, values)),
  }) as unknown as pg.Pool;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `pending` is still unsettled 50 ms from now. */
const stillWaiting = (pending: Promise<unknown>) =>
  Promise.race([pending.then(() => false), sleep(50).then(() => true)]);

/**
 * Runs `run` while a transaction of its own, as an operator's open one would, holds the stock rows of
 * `ids` locked; `unlock` rolls it back, and so does the end, whatever happened.
 */
async function withRowsLocked(ids: number[], run: (unlock: () => Promise<void>) => Promise<void>) {
  const holder = await db.pool.connect();
  let open = true;
  const unlock = async () => {
    if (!open) return;
    open = false;
    await holder.query('ROLLBACK');
  };
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM inventario WHERE producto_id = ANY($1::int[]) FOR UPDATE', [ids]);
    await run(unlock);
  } finally {
    await unlock();
    holder.release();
  }
}

describe('the purchase recorder', () => {
  it('records a purchase alone when idle, and those that arrive meanwhile together, each judged as if alone', async () => {
    const id = await stocked(5);
    const registry = new Registry();
    const recorder = createPurchaseRecorder(db.pool, { registry });
    // The first is written at once; the other three arrive while it is in flight and wait for it.
    const outcomes = await Promise.all([4, 3, 1, 1].map((n) => recorder.record(buy(id, n))));
    expect(outcomes.map(summary)).toEqual([
      { ok: true, cantidad: 4, restante: 1 },
      { ok: false, disponible: 1 },
      { ok: true, cantidad: 1, restante: 0 },
      { ok: false, disponible: 0 },
    ]);
    expect(await statements(registry)).toEqual({ count: 2, sum: 4 });
    expect(await books(id)).toEqual({ stock: 0, sold: 5, rows: 2, events: 4 });
    // The purchase written alone was recorded before the batch's.
    const ok = outcomes.filter((o) => o.ok);
    expect(ok[1]!.purchase.id).toBeGreaterThan(ok[0]!.purchase.id);
  });

  it('the batch statement records exactly what the single statement does, row for row and event for event', async () => {
    const [alone, batched] = [await stocked(6), await stocked(6)];
    const asked = [2, 5, 1, 3, 3];
    const one: PurchaseOutcome[] = [];
    for (const n of asked) one.push(await recordPurchase(db.pool, buy(alone, n)));
    const many = await recordPurchases(
      db.pool,
      asked.map((n) => buy(batched, n)),
    );
    // Everything but the ids, the product and the clock.
    const comparable = (outcome: PurchaseOutcome | RowLocked) =>
      outcome.ok
        ? { ...outcome, purchase: { ...outcome.purchase, id: 0, producto_id: 0, created_at: '' } }
        : outcome;
    expect(many.map(comparable)).toEqual(one.map(comparable));
    expect(many.map(summary)).toEqual([
      { ok: true, cantidad: 2, restante: 4 },
      { ok: false, disponible: 4 },
      { ok: true, cantidad: 1, restante: 3 },
      { ok: true, cantidad: 3, restante: 0 },
      { ok: false, disponible: 0 },
    ]);
    const events = async (id: number) => {
      const { rows } = await db.pool.query<{ type: string; data: Record<string, unknown> }>(
        'SELECT type, data FROM outbox WHERE producto_id = $1 ORDER BY seq',
        [id],
      );
      return rows.map(({ type, data }) => ({ type, data: { ...data, producto_id: 0, purchase_id: 0 } }));
    };
    expect(await events(batched)).toEqual(await events(alone));
    expect(await books(batched)).toEqual(await books(alone));
    // The ledger too: one movement per purchase granted, naming it, and none for a refusal.
    const movements = async (id: number) => {
      const { rows } = await db.pool.query<Record<string, unknown>>(
        `SELECT m.causa, m.delta, m.delta_reservado, m.cantidad, m.reservado, m.reason, m.source_type,
                c.cantidad AS source_cantidad
         FROM movimientos_inventario m LEFT JOIN historial_compras c ON c.id = m.source_id
         WHERE m.producto_id = $1 ORDER BY m.id`,
        [id],
      );
      return rows;
    };
    const ledger = await movements(batched);
    expect(ledger).toEqual(await movements(alone));
    expect(ledger.map((m) => [m.causa, m.delta, m.cantidad, m.source_type, m.source_cantidad])).toEqual([
      ['set', 6, 6, null, null],
      ['purchase', -2, 4, 'purchases', 2],
      ['purchase', -1, 3, 'purchases', 1],
      ['purchase', -3, 0, 'purchases', 3],
    ]);
  });

  it('never sells more than the stock, whatever the batches: 300 buyers of 1–3 units, stock 100', async () => {
    const id = await stocked(100);
    const registry = new Registry();
    const recorder = createPurchaseRecorder(db.pool, { registry });
    const asked = Array.from({ length: 300 }, (_, i) => 1 + (i % 3));
    const outcomes = await Promise.all(asked.map((n) => recorder.record(buy(id, n))));
    const sold = outcomes.reduce((sum, o, i) => sum + (o.ok ? asked[i]! : 0), 0);
    const { count, sum } = await statements(registry);
    console.log(
      `[batcher] 300 buyers, stock 100: ${outcomes.filter((o) => o.ok).length} granted (${sold} units) in ` +
        `${count} statements (${(sum / count).toFixed(1)} purchases each on average, at most ${MAX_BATCH})`,
    );
    expect(sold).toBe(100);
    expect(sum).toBe(300);
    expect(count).toBeGreaterThanOrEqual(1 + Math.ceil(299 / MAX_BATCH));
    expect(count).toBeLessThan(300);
    expect(await books(id)).toMatchObject({ stock: 0, sold: 100 });
    expect(await ledgerMismatches(db.pool)).toEqual([]);
    // Each refusal reports a stock too small for it.
    outcomes.forEach((o, i) => {
      if (!o.ok) expect(o.disponible).toBeLessThan(asked[i]!);
    });
  });

  it('a batch PostgreSQL refuses is recorded again purchase by purchase: only the one at fault fails', async () => {
    const id = await stocked(10);
    const recorder = createPurchaseRecorder(db.pool);
    const first = recorder.record(buy(id, 1));
    // Waiting behind the first: a sound purchase, then one the database refuses (not a number).
    const sound = recorder.record(buy(id, 2));
    // Its rejection is expected from the start: it may come before the others are awaited.
    const broken = expect(recorder.record({ ...buy(id, 3), unitario: 'abc' })).rejects.toThrow(/numeric/);
    expect((await first).ok).toBe(true);
    expect(summary(await sound)).toEqual({ ok: true, cantidad: 2, restante: 7 });
    await broken;
    expect(await books(id)).toEqual({ stock: 7, sold: 3, rows: 2, events: 4 });
    // The product is free again: the next purchase is written at once.
    expect(summary(await recorder.record(buy(id, 4)))).toEqual({ ok: true, cantidad: 4, restante: 3 });
  });

  it("after a refused batch, each product's purchases are recorded again one after another, in arrival order", async () => {
    const [other, refused] = [await stocked(10), await stocked(10)];
    const ids = [await stocked(5), await stocked(5), await stocked(5), await stocked(5)];
    // Watches the statements in flight: two of them must never hold purchases of one product.
    const inFlight = new Map<number, number>();
    let overlapped = false;
    const watched = poolThrough(async (config, run) => {
      const ids = new Set(config.values![0] as number[]);
      for (const id of ids) {
        inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
        overlapped ||= inFlight.get(id)! > 1;
      }
      try {
        return await run();
      } finally {
        for (const id of ids) inFlight.set(id, inFlight.get(id)! - 1);
      }
    });
    const registry = new Registry();
    const recorder = createPurchaseRecorder(watched, { registry });
    const first = recorder.record(buy(other, 1));
    // One batch: a purchase the database refuses, then for each product five purchases whose
    // outcomes depend on their order (recorded out of order, a 1 can take stock the 5 needed).
    const broken = expect(recorder.record({ ...buy(refused, 1), unitario: 'abc' })).rejects.toThrow(
      /numeric/,
    );
    const ordered = ids.map((id) => [5, 1, 1, 1, 1].map((n) => recorder.record(buy(id, n))));
    expect((await first).ok).toBe(true);
    await broken;
    for (const outcomes of ordered) {
      expect((await Promise.all(outcomes)).map(summary)).toEqual([
        { ok: true, cantidad: 5, restante: 0 },
        ...Array.from({ length: 4 }, () => ({ ok: false, disponible: 0 })),
      ]);
    }
    expect(overlapped).toBe(false);
    // The first alone, the batch of 21 refused, then each of its purchases alone.
    expect(await statements(registry)).toEqual({ count: 23, sum: 43 });
  });

  it('a batch whose commit PostgreSQL refuses rolled back, so it is recorded again purchase by purchase', async () => {
    // A check that only runs at commit: purchases of 13 units are refused there.
    await db.pool.query(`
      CREATE FUNCTION refuse_thirteen() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.cantidad = 13 THEN RAISE EXCEPTION 'thirteen refused at commit'; END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER refuse_thirteen AFTER INSERT ON historial_compras
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_thirteen();`);
    try {
      const id = await stocked(50);
      const recorder = createPurchaseRecorder(db.pool);
      const first = recorder.record(buy(id, 1));
      const sound = recorder.record(buy(id, 2));
      const refused = expect(recorder.record(buy(id, 13))).rejects.toThrow(/thirteen/);
      expect((await first).ok).toBe(true);
      expect(summary(await sound)).toEqual({ ok: true, cantidad: 2, restante: 47 });
      await refused;
      expect(await books(id)).toEqual({ stock: 47, sold: 3, rows: 2, events: 4 });
    } finally {
      await db.pool.query(
        'DROP TRIGGER refuse_thirteen ON historial_compras; DROP FUNCTION refuse_thirteen()',
      );
    }
  });

  it('a batch whose answer is lost may have committed: each of its purchases fails, none is recorded twice', async () => {
    const id = await stocked(50);
    // A batch statement commits, then the connection drops before its answer arrives.
    const losesBatchAnswers = poolThrough(async (config, run) => {
      const result = await run();
      if ((config.values![0] as number[]).length > 1) throw new Error('Connection terminated unexpectedly');
      return result;
    });
    const recorder = createPurchaseRecorder(losesBatchAnswers);
    const first = recorder.record(buy(id, 1));
    const batched = [2, 3].map((n) => expect(recorder.record(buy(id, n))).rejects.toThrow(/terminated/));
    expect((await first).ok).toBe(true);
    await Promise.all(batched);
    expect(await books(id)).toEqual({ stock: 44, sold: 6, rows: 3, events: 6 });
  });

  it('a purchase of a locked row waits by itself, beside the others, and its product keeps its order', async () => {
    const [locked, free] = [await stocked(10), await stocked(10)];
    await withRowsLocked([locked], async (unlock) => {
      const recorder = createPurchaseRecorder(db.pool, { lockWaitMs: 10_000 });
      const held = recorder.record(buy(locked, 1));
      await sleep(5);
      const later = recorder.record(buy(locked, 2));
      const started = performance.now();
      expect(summary(await recorder.record(buy(free, 1)))).toEqual({ ok: true, cantidad: 1, restante: 9 });
      const waited = performance.now() - started;
      console.log(
        `[batcher] a purchase of another product waited ${waited.toFixed(0)} ms beside a locked one`,
      );
      // Without the stall rule it would wait for the unlock below, i.e. forever: the bound is for a loaded machine.
      expect(waited).toBeLessThan(STALL_MS + 10_000);
      expect(await stillWaiting(held)).toBe(true);
      await unlock();
      const [first, second] = [await held, await later];
      expect(summary(first)).toEqual({ ok: true, cantidad: 1, restante: 9 });
      expect(summary(second)).toEqual({ ok: true, cantidad: 2, restante: 7 });
      expect(first.ok && second.ok && second.purchase.id > first.purchase.id).toBe(true);
    });
  });

  it('a batch passes over a locked row: the other products in it are recorded at once, nothing waits', async () => {
    const [first, locked, free] = [await stocked(10), await stocked(10), await stocked(10)];
    await withRowsLocked([locked], async (unlock) => {
      const registry = new Registry();
      const recorder = createPurchaseRecorder(db.pool, { registry, lockWaitMs: 10_000 });
      const alone = recorder.record(buy(first, 1));
      // One batch behind it, sorted by product: the locked row first, then the free one.
      const held = recorder.record(buy(locked, 1));
      const started = performance.now();
      expect(summary(await recorder.record(buy(free, 1)))).toEqual({ ok: true, cantidad: 1, restante: 9 });
      const waited = performance.now() - started;
      console.log(
        `[batcher] a purchase batched with a locked row was recorded after ${waited.toFixed(0)} ms`,
      );
      expect((await alone).ok).toBe(true);
      // The first alone, the batch of two that handed the locked one back, then that one alone.
      expect(await statements(registry)).toEqual({ count: 3, sum: 4 });
      // Without the lock rules it would wait for the unlock below, i.e. forever: the bound is for a loaded machine.
      expect(waited).toBeLessThan(10_000);
      expect(await stillWaiting(held)).toBe(true);
      await unlock();
      expect(summary(await held)).toEqual({ ok: true, cantidad: 1, restante: 9 });
      expect(await books(locked)).toEqual({ stock: 9, sold: 1, rows: 1, events: 2 });
    });
  });

  it('a purchase whose row stays locked is refused after lockWaitMs, nothing written; the product recovers', async () => {
    const id = await stocked(10);
    const recorder = createPurchaseRecorder(db.pool, { lockWaitMs: 300 });
    await withRowsLocked([id], async () => {
      const refused = await recorder.record(buy(id, 1)).catch((err: unknown) => err);
      expect(refused).toMatchObject({
        status: 503,
        code: 'inventory_locked',
        headers: { 'retry-after': '1' },
      });
    });
    expect(await books(id)).toEqual({ stock: 10, sold: 0, rows: 0, events: 0 });
    expect(summary(await recorder.record(buy(id, 2)))).toEqual({ ok: true, cantidad: 2, restante: 8 });
  });

  it('a purchase is never written past its deadline: dropped from the queue, its lock wait cut short', async () => {
    const id = await stocked(10);
    const recorder = createPurchaseRecorder(db.pool, { lockWaitMs: 10_000 });
    await withRowsLocked([id], async (unlock) => {
      const started = performance.now();
      // Waits for the row, but not past its deadline.
      const cut = recorder.record(buy(id, 1), new Deadline(300)).catch((err: unknown) => err);
      // Waits for a statement behind it (its product is busy): dropped from the queue at its deadline.
      const first = recorder.record(buy(id, 1), new Deadline(5_000));
      const dropped = recorder.record(buy(id, 2), new Deadline(200)).catch((err: unknown) => err);
      expect(await dropped).toMatchObject({ status: 503, code: 'deadline_exceeded' });
      expect(await cut).toMatchObject({ status: 503, code: 'inventory_locked' });
      console.log(
        `[batcher] deadlines of 200 and 300 ms answered after ${(performance.now() - started).toFixed(0)} ms`,
      );
      await unlock();
      expect(summary(await first)).toEqual({ ok: true, cantidad: 1, restante: 9 });
    });
    expect(await books(id)).toEqual({ stock: 9, sold: 1, rows: 1, events: 2 });
  });

  it('sheds load: a purchase that finds the queue full is refused at once, nothing written', async () => {
    const id = await stocked(10);
    const recorder = createPurchaseRecorder(db.pool, { queueMax: 2, lockWaitMs: 10_000 });
    await withRowsLocked([id], async (unlock) => {
      // One waits for the row; two wait in the queue behind it; the fourth finds the queue full.
      const kept = [1, 2, 3].map((n) => recorder.record(buy(id, n)));
      await sleep(100);
      const shed = await recorder.record(buy(id, 4)).catch((err: unknown) => err);
      expect(shed).toMatchObject({ status: 503, code: 'queue_full', headers: { 'retry-after': '1' } });
      await unlock();
      expect((await Promise.all(kept)).map(summary)).toEqual([
        { ok: true, cantidad: 1, restante: 9 },
        { ok: true, cantidad: 2, restante: 7 },
        { ok: true, cantidad: 3, restante: 4 },
      ]);
    });
    expect(await books(id)).toEqual({ stock: 4, sold: 6, rows: 3, events: 6 });
  });

  it('locked rows take at most MAX_STATEMENTS - 1 connections: the other products always have one', async () => {
    const ids = await Promise.all(Array.from({ length: 8 }, () => stocked(10)));
    const free = await stocked(10);
    let active = 0;
    let most = 0;
    // As large as a service's: the connections the recorder takes are its own choice.
    const large = new pg.Pool({ connectionString: db.url, max: 10 });
    const counted = poolThrough(async (_config, run) => {
      most = Math.max(most, ++active);
      try {
        return await run();
      } finally {
        active -= 1;
      }
    }, large);
    onTestFinished(() => large.end());
    await withRowsLocked(ids, async (unlock) => {
      const recorder = createPurchaseRecorder(counted, { lockWaitMs: 10_000 });
      const outcomes = ids.map((id) => recorder.record(buy(id, 1)));
      await sleep(500);
      expect(most).toBe(MAX_STATEMENTS - 1);
      const started = performance.now();
      for (const n of [1, 2]) {
        expect(summary(await recorder.record(buy(free, n)))).toMatchObject({ ok: true, cantidad: n });
      }
      const waited = performance.now() - started;
      console.log(`[batcher] 2 purchases beside 8 locked rows answered in ${waited.toFixed(0)} ms`);
      expect(waited).toBeLessThan(2_000);
      expect(most).toBe(MAX_STATEMENTS);
      await unlock();
      expect((await Promise.all(outcomes)).map(summary)).toEqual(
        ids.map(() => ({ ok: true, cantidad: 1, restante: 9 })),
      );
    });
  });

  it('a place a keyed purchase held for a locked row goes to a queued one as soon as it is done', async () => {
    const ids = await Promise.all(Array.from({ length: MAX_STATEMENTS }, () => stocked(10)));
    const large = new pg.Pool({ connectionString: db.url, max: 10 });
    onTestFinished(() => large.end());
    const recorder = createPurchaseRecorder(large, { lockWaitMs: 10_000 });
    await withRowsLocked(ids, async (unlock) => {
      // Keyed purchases of three locked rows, each in its own transaction, take every such place.
      const keyed = ids
        .slice(0, MAX_STATEMENTS - 1)
        .map((id) => withTransaction(large, (tx) => recorder.recordIn(tx, buy(id, 1), new Deadline(10_000))));
      await sleep(200);
      const queued = recorder.record(buy(ids[MAX_STATEMENTS - 1]!, 1), new Deadline(5_000));
      expect(await stillWaiting(queued)).toBe(true);
      await unlock();
      for (const outcome of await Promise.all(keyed)) expect(outcome.ok).toBe(true);
      expect(summary(await queued)).toEqual({ ok: true, cantidad: 1, restante: 9 });
    });
  });

  it('two instances batching the same products at once record every purchase, without a deadlock', async () => {
    const deadlocks = async () =>
      (
        await db.pool.query<{ n: number }>(
          'SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()',
        )
      ).rows[0]!.n;
    const before = await deadlocks();
    const ids = await Promise.all(Array.from({ length: 8 }, () => stocked(1_000)));
    const registries = [new Registry(), new Registry()] as const;
    const [one, two] = registries.map((registry) => createPurchaseRecorder(db.pool, { registry }));
    // Each instance meets the products in an order of its own.
    const mine = Array.from({ length: 200 }, (_, i) => ids[(i * 3) % 8]!);
    const theirs = Array.from({ length: 200 }, (_, i) => ids[7 - ((i * 5) % 8)]!);
    const started = performance.now();
    const outcomes = await Promise.all([
      ...mine.map((id) => one!.record(buy(id, 1))),
      ...theirs.map((id) => two!.record(buy(id, 1))),
    ]);
    const ms = Math.round(performance.now() - started);
    const count = (await statements(registries[0])).count + (await statements(registries[1])).count;
    console.log(
      `[batcher] 2 recorders × 200 purchases over 8 products in opposite orders: ${count} statements, ${ms} ms`,
    );
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const sold = await Promise.all(ids.map(async (id) => (await books(id)).sold));
    expect(sold.reduce((a, b) => a + b, 0)).toBe(400);
    // pg_stat_database is updated when a backend reports its statistics: give it the time.
    await sleep(700);
    expect(await deadlocks()).toBe(before);
  });
});
