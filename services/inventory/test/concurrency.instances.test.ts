/**
 * Race guarded against: overselling across instances. The service is meant to run as several
 * stateless instances behind a load balancer against one database, so no in-process lock or cache
 * may be what keeps the stock right. Two Inventory instances on the SAME database, both listening
 * on real ports, take purchases and adjustments at the same time over real HTTP: the sums must hold
 * exactly as with one instance, and each instance must have taken part.
 */
import type { App } from '@catalogo/kit/app';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import {
  API_KEY,
  adjustmentBody,
  buildInventory,
  createProductIn,
  expectLedgerBalanced,
  expectUnbrokenChain,
  historyOf,
  JSONAPI,
  purchaseBody,
  seeded,
  setBody,
  shuffled,
  startProducts,
  stockEvents,
  stockOf,
} from './helpers.js';

let products: Awaited<ReturnType<typeof startProducts>>;
let db: TestDatabase;
const instances: { app: App; url: string }[] = [];
// Enough sockets that every request of a burst is in flight at once rather than queued client-side.
const agent = new Agent({ connections: 128 });

beforeAll(async () => {
  products = await startProducts();
  db = await createTestDatabase('inventory');
  for (let i = 0; i < 2; i++) {
    const app = await buildInventory(db.url, products.url, { DATABASE_POOL_MAX: '8' });
    instances.push({ app, url: await app.listen({ host: '127.0.0.1', port: 0 }) });
  }
});

afterAll(async () => {
  for (const { app } of instances) await app.close();
  await agent.close();
  await products?.close();
  await db?.drop();
});

async function call(instance: number, method: string, path: string, body: unknown) {
  const res = await fetch(`${instances[instance]!.url}${path}`, {
    method,
    headers: { 'x-api-key': API_KEY, 'content-type': JSONAPI },
    body: JSON.stringify(body),
    dispatcher: agent,
  });
  expect(res.headers.get('content-type')).toBe(JSONAPI);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

it('two instances selling one product at once: exactly the stock is sold', async () => {
  const id = await createProductIn(products.app, 3.3);
  expect((await call(0, 'PATCH', `/api/inventory/${id}`, setBody(id, { cantidad: 37 }))).status).toBe(200);

  const started = performance.now();
  const outcomes = await Promise.all(
    Array.from({ length: 200 }, (_, i) => call(i % 2, 'POST', '/api/purchases', purchaseBody(id, 1))),
  );
  const ms = Math.round(performance.now() - started);
  const sold = outcomes.filter((o) => o.status === 201).length;
  const byInstance = [0, 1].map((n) => outcomes.filter((o, i) => i % 2 === n && o.status === 201).length);
  console.log(
    `[instances] 200 buyers × 1 over 2 instances, stock 37: ${sold} × 201 (${byInstance.join(' + ')}), ` +
      `${outcomes.length - sold} × 409 in ${ms} ms`,
  );

  expect(sold).toBe(37);
  expect(outcomes.filter((o) => o.status === 409)).toHaveLength(163);
  expect(byInstance.every((n) => n > 0)).toBe(true);
  expect(await stockOf(db, id)).toBe(0);
  await expectLedgerBalanced(db);
  expect(await historyOf(db, id)).toEqual({ rows: 37, units: 37 });
});

it('two instances, mixed purchases and adjustments: final = initial + Σ adjustments − Σ sold', async () => {
  const random = seeded(42);
  const id = await createProductIn(products.app, 1.5);
  const initial = 60;
  expect((await call(1, 'PATCH', `/api/inventory/${id}`, setBody(id, { cantidad: initial }))).status).toBe(
    200,
  );

  type Op = { kind: 'purchase' | 'adjustment'; n: number };
  const ops: Op[] = shuffled(
    [
      ...Array.from({ length: 160 }, () => ({ kind: 'purchase' as const, n: 1 + Math.floor(random() * 3) })),
      ...Array.from({ length: 40 }, () => ({ kind: 'adjustment' as const, n: 1 + Math.floor(random() * 4) })),
    ],
    random,
  );
  const started = performance.now();
  const outcomes = await Promise.all(
    ops.map(async (op, i) => {
      const res =
        op.kind === 'purchase'
          ? await call(i % 2, 'POST', '/api/purchases', purchaseBody(id, op.n))
          : await call(i % 2, 'POST', `/api/inventory/${id}/adjustments`, adjustmentBody({ delta: op.n }));
      return { ...op, status: res.status };
    }),
  );
  const ms = Math.round(performance.now() - started);
  const sold = outcomes.filter((o) => o.kind === 'purchase' && o.status === 201);
  const added = outcomes.filter((o) => o.kind === 'adjustment');
  const soldUnits = sold.reduce((sum, o) => sum + o.n, 0);
  const addedUnits = added.reduce((sum, o) => sum + o.n, 0);
  const final = (await stockOf(db, id))!;
  console.log(
    `[instances] 2 instances, ${ops.length} ops: ${sold.length} purchases (${soldUnits} units) sold, ` +
      `${added.length} adjustments (+${addedUnits}), stock ${initial} → ${final} in ${ms} ms`,
  );

  expect(added.every((o) => o.status === 201)).toBe(true);
  expect(outcomes.every((o) => o.status === 201 || (o.kind === 'purchase' && o.status === 409))).toBe(true);
  expect(final).toBeGreaterThanOrEqual(0);
  expect(final).toBe(initial + addedUnits - soldUnits);
  await expectLedgerBalanced(db);
  expect(await historyOf(db, id)).toEqual({ rows: sold.length, units: soldUnits });
  expectUnbrokenChain(await stockEvents(db, id), 0, final);
});
