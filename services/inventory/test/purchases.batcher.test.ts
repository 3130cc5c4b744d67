/**
 * Group commit of a product's purchases: the ones that wait behind one in flight run in one
 * transaction, in arrival order, each granted or refused exactly as it would have been alone.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { createPurchaseRecorder, MAX_BATCH } from '../src/purchases/purchases.batcher.js';
import type { NewPurchase, PurchaseOutcome } from '../src/purchases/purchases.repository.js';

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
  await db.pool.query('INSERT INTO inventario (producto_id, cantidad) VALUES ($1, $2)', [id, cantidad]);
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
            (SELECT count(*)::int FROM outbox WHERE producto_id = $1) AS events`,
    [id],
  );
  return rows[0]!;
}

async function batches(registry: Registry): Promise<{ count: number; sum: number }> {
  const values = (await registry.getSingleMetric('purchase_batch_size')!.get()).values as {
    metricName?: string;
    value: number;
  }[];
  const of = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
  return { count: of('purchase_batch_size_count'), sum: of('purchase_batch_size_sum') };
}

const summary = (outcome: PurchaseOutcome) =>
  outcome.ok ? { ok: true, cantidad: outcome.purchase.cantidad, restante: outcome.restante } : outcome;

describe('the purchase recorder', () => {
  it('runs the purchases that waited in one transaction, in arrival order, each judged as if alone', async () => {
    const id = await stocked(5);
    const registry = new Registry();
    const recorder = createPurchaseRecorder(db.pool, registry);
    // The first runs at once; the other three arrive while it is in flight and wait for it.
    const outcomes = await Promise.all([4, 3, 1, 1].map((n) => recorder.record(buy(id, n))));
    expect(outcomes.map(summary)).toEqual([
      { ok: true, cantidad: 4, restante: 1 },
      { ok: false, disponible: 1 },
      { ok: true, cantidad: 1, restante: 0 },
      { ok: false, disponible: 0 },
    ]);
    expect(await batches(registry)).toEqual({ count: 1, sum: 3 });
    expect(await books(id)).toEqual({ stock: 0, sold: 5, rows: 2, events: 4 });
    // The purchase that ran alone was recorded before the batch's.
    const ok = outcomes.filter((o) => o.ok);
    expect(ok[1]!.purchase.id).toBeGreaterThan(ok[0]!.purchase.id);
  });

  it('never sells more than the stock, whatever the batches: 300 buyers of 1–3 units, stock 100', async () => {
    const id = await stocked(100);
    const registry = new Registry();
    const recorder = createPurchaseRecorder(db.pool, registry);
    const asked = Array.from({ length: 300 }, (_, i) => 1 + (i % 3));
    const outcomes = await Promise.all(asked.map((n) => recorder.record(buy(id, n))));
    const sold = outcomes.reduce((sum, o, i) => sum + (o.ok ? asked[i]! : 0), 0);
    const { count, sum } = await batches(registry);
    console.log(
      `[batcher] 300 buyers, stock 100: ${outcomes.filter((o) => o.ok).length} granted (${sold} units) in ` +
        `1 + ${count} commits (batches of ${(sum / count).toFixed(1)} on average, at most ${MAX_BATCH})`,
    );
    expect(sold).toBe(100);
    expect(count).toBeGreaterThanOrEqual(Math.ceil(299 / MAX_BATCH));
    expect(sum).toBe(299);
    expect(await books(id)).toMatchObject({ stock: 0, sold: 100 });
    // Each refusal reports a stock too small for it.
    outcomes.forEach((o, i) => {
      if (!o.ok) expect(o.disponible).toBeLessThan(asked[i]!);
    });
  });

  it('a batch that fails is recorded again purchase by purchase: only the one at fault fails', async () => {
    const id = await stocked(10);
    const recorder = createPurchaseRecorder(db.pool);
    const first = recorder.record(buy(id, 1));
    // Waiting behind the first: a sound purchase, then one the database refuses (not a number).
    const sound = recorder.record(buy(id, 2));
    const broken = recorder.record({ ...buy(id, 3), unitario: 'abc' });
    expect((await first).ok).toBe(true);
    expect(summary(await sound)).toEqual({ ok: true, cantidad: 2, restante: 7 });
    await expect(broken).rejects.toThrow(/numeric/);
    expect(await books(id)).toEqual({ stock: 7, sold: 3, rows: 2, events: 4 });
    // The product is free again: the next purchase runs at once.
    expect(summary(await recorder.record(buy(id, 4)))).toEqual({ ok: true, cantidad: 4, restante: 3 });
  });

  it('a batch whose commit fails is not recorded again: each of its purchases fails', async () => {
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
      const refused = recorder.record(buy(id, 13));
      expect((await first).ok).toBe(true);
      // A failed commit may have committed: recording again could sell twice, so both fail.
      await expect(sound).rejects.toThrow(/thirteen/);
      await expect(refused).rejects.toThrow(/thirteen/);
      expect(await books(id)).toEqual({ stock: 49, sold: 1, rows: 1, events: 2 });
    } finally {
      await db.pool.query(
        'DROP TRIGGER refuse_thirteen ON historial_compras; DROP FUNCTION refuse_thirteen()',
      );
    }
  });

  it('purchases of different products do not wait for each other', async () => {
    const [a, b] = [await stocked(3), await stocked(3)];
    const registry = new Registry();
    const recorder = createPurchaseRecorder(db.pool, registry);
    await Promise.all([recorder.record(buy(a, 1)), recorder.record(buy(b, 1))]);
    expect(await batches(registry)).toEqual({ count: 0, sum: 0 });
  });

  it('two instances batching the same products at once record every purchase', async () => {
    const ids = await Promise.all(Array.from({ length: 8 }, () => stocked(1_000)));
    const [one, two] = [createPurchaseRecorder(db.pool), createPurchaseRecorder(db.pool)];
    // Each instance meets the products in an order of its own.
    const mine = Array.from({ length: 200 }, (_, i) => ids[(i * 3) % 8]!);
    const theirs = Array.from({ length: 200 }, (_, i) => ids[7 - ((i * 5) % 8)]!);
    const started = performance.now();
    const outcomes = await Promise.all([
      ...mine.map((id) => one.record(buy(id, 1))),
      ...theirs.map((id) => two.record(buy(id, 1))),
    ]);
    const ms = Math.round(performance.now() - started);
    console.log(`[batcher] 2 recorders × 200 purchases over 8 products in opposite orders: ${ms} ms`);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const sold = await Promise.all(ids.map(async (id) => (await books(id)).sold));
    expect(sold.reduce((a, b) => a + b, 0)).toBe(400);
  });
});
