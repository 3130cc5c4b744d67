/**
 * Idempotency-Key on POST /api/purchases (docs/api.md §3). The race guarded against: a client that
 * retries after a timeout — possibly through another instance behind the load balancer — must not
 * buy twice, and every retry must get the very response the first attempt produced.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from '@catalogo/kit/app';
import { withTransaction } from '@catalogo/kit/db';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { loadConfig } from '../src/config.js';
import { purgeKeys } from '../src/idempotency/idempotency.repository.js';
import { canonicalJson, fingerprintOf, idempotent } from '../src/idempotency/idempotency.service.js';
import { recordPurchase } from '../src/purchases/purchases.repository.js';
import {
  API_KEY,
  buildInventory,
  createProductIn,
  fakeProduct,
  headers,
  JSONAPI,
  purchaseBody,
  setStockIn,
  startProducts,
} from './helpers.js';

const SECOND_KEY = 'second-key';
const ENDPOINT = 'POST /api/purchases';

let products: Awaited<ReturnType<typeof startProducts>>;
let db: TestDatabase;
let appA: App;
let appB: App;

beforeAll(async () => {
  products = await startProducts();
  db = await createTestDatabase('inventory');
  // Two instances on one database, as behind a load balancer; relays off: events stay countable rows.
  [appA, appB] = await Promise.all([
    buildInventory(db.url, products.url, { OUTBOX_RELAY: 'off' }),
    buildInventory(db.url, products.url, { OUTBOX_RELAY: 'off' }),
  ]);
});

afterAll(async () => {
  await appA?.close();
  await appB?.close();
  await products?.close();
  await db?.drop();
});

function buy(app: App, key: string | undefined, body: unknown, apiKey = API_KEY) {
  return app.inject({
    method: 'POST',
    url: '/api/purchases',
    headers: { ...headers, 'x-api-key': apiKey, ...(key === undefined ? {} : { 'idempotency-key': key }) },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** What a purchase request may have changed for one product. */
async function written(productoId: number) {
  const { rows } = await db.pool.query<{ stock: number | null; purchases: number; events: number }>(
    `SELECT (SELECT cantidad FROM inventario WHERE producto_id = $1) AS stock,
            (SELECT count(*)::int FROM historial_compras WHERE producto_id = $1) AS purchases,
            (SELECT count(*)::int FROM outbox WHERE producto_id = $1 AND type = 'purchase.completed') AS events`,
    [productoId],
  );
  return rows[0]!;
}

async function keyRow(key: string, apiKeyDigest?: string) {
  const { rows } = await db.pool.query<{ state: string; response_status: number | null }>(
    `SELECT state, response_status FROM idempotency_keys WHERE key = $1 AND ($2::text IS NULL OR client_id = $2)`,
    [key, apiKeyDigest ?? null],
  );
  return rows;
}

describe('the same key sent many times at once, over two instances', () => {
  it('buys once; every answer is the stored 201 or a 409 in flight; retries replay it byte for byte', async () => {
    const id = await createProductIn(products.app, 2.5, 'Idempotente');
    await setStockIn(appA, id, 100);
    const key = `order-${randomUUID()}`;
    const body = purchaseBody(id, 3);

    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => buy(i % 2 === 0 ? appA : appB, key, body)),
    );

    const created = responses.filter((r) => r.statusCode === 201);
    const inFlight = responses.filter((r) => r.statusCode === 409);
    expect(created.length + inFlight.length, responses.map((r) => r.statusCode).join()).toBe(50);
    const originals = created.filter((r) => r.headers['idempotent-replayed'] === undefined);
    expect(originals).toHaveLength(1);
    const original = originals[0]!;
    expect(original.headers['content-type']).toBe(JSONAPI);
    for (const replay of created) {
      expect(replay.body).toBe(original.body);
      expect(replay.headers.location).toBe(original.headers.location);
    }
    for (const res of inFlight) {
      const [error] = res.json().errors;
      expect(error).toMatchObject({ status: '409', code: 'idempotency_key_in_flight' });
      expect(error.source).toEqual({ header: 'Idempotency-Key' });
      expect(error.detail).toMatch(/Idempotency-Key/);
      expect(res.headers['retry-after']).toBe('1');
    }

    expect(await written(id)).toEqual({ stock: 97, purchases: 1, events: 1 });
    const purchase = original.json().data;
    expect(original.headers.location).toBe(`/api/purchases/${purchase.id}`);
    expect(purchase.attributes).toMatchObject({
      producto_id: id,
      cantidad: 3,
      precio_unitario: 2.5,
      total: 7.5,
    });

    for (const app of [appA, appB, appA]) {
      const retry = await buy(app, key, body);
      expect(retry.statusCode).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.headers.location).toBe(original.headers.location);
      expect(retry.headers['content-type']).toBe(JSONAPI);
      expect(retry.body).toBe(original.body);
    }
    expect(await written(id)).toEqual({ stock: 97, purchases: 1, events: 1 });
  });
});

describe('one key, one request', () => {
  it('the same key with another body is a 422 and writes nothing', async () => {
    const id = await createProductIn(products.app, 4, 'Idempotente');
    await setStockIn(appA, id, 10);
    const key = randomUUID();
    expect((await buy(appA, key, purchaseBody(id, 1))).statusCode).toBe(201);
    const before = await written(id);

    const res = await buy(appB, key, purchaseBody(id, 2));
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toBe(JSONAPI);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    const [error] = res.json().errors;
    expect(error).toMatchObject({ status: '422', code: 'idempotency_key_reused' });
    expect(error.source).toEqual({ header: 'Idempotency-Key' });
    expect(await written(id)).toEqual(before);
  });

  it('the same body with members in another order and other spacing is the same request', async () => {
    const id = await createProductIn(products.app, 4, 'Idempotente');
    await setStockIn(appA, id, 10);
    const key = randomUUID();
    const first = await buy(appA, key, purchaseBody(id, 2));
    expect(first.statusCode).toBe(201);
    const reordered = `{ "data": { "attributes": { "cantidad": 2, "producto_id": ${id} },  "type": "purchases" } }`;
    const retry = await buy(appB, key, reordered);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toBe(first.body);
    expect(await written(id)).toMatchObject({ stock: 8, purchases: 1 });
  });

  it('a first attempt refused for lack of stock is replayed as that 409, even after stock arrives', async () => {
    const id = await createProductIn(products.app, 3, 'Idempotente');
    await setStockIn(appA, id, 1);
    const key = randomUUID();
    const first = await buy(appA, key, purchaseBody(id, 5));
    expect(first.statusCode).toBe(409);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const [error] = first.json().errors;
    expect(error).toMatchObject({ code: 'insufficient_stock', detail: 'Inventario insuficiente' });
    expect(error.meta).toEqual({ disponible: 1 });
    expect(await keyRow(key)).toEqual([{ state: 'done', response_status: 409 }]);

    await setStockIn(appA, id, 50);
    const retry = await buy(appB, key, purchaseBody(id, 5));
    expect(retry.statusCode).toBe(409);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['content-type']).toBe(JSONAPI);
    expect(retry.body).toBe(first.body);
    expect(await written(id)).toEqual({ stock: 50, purchases: 0, events: 0 });
  });

  it('a 404 (unknown product) and a 422 (total too large) are stored and replayed too', async () => {
    const missing = await buy(appA, 'k-404', purchaseBody(2_000_000_000, 1));
    expect(missing.statusCode).toBe(404);
    const missingAgain = await buy(appB, 'k-404', purchaseBody(2_000_000_000, 1));
    expect(missingAgain.statusCode).toBe(404);
    expect(missingAgain.headers['idempotent-replayed']).toBe('true');
    expect(missingAgain.body).toBe(missing.body);

    const id = await createProductIn(products.app, 99_999_999.99, 'Idempotente');
    await setStockIn(appA, id, 5);
    const tooLarge = await buy(appA, 'k-422', purchaseBody(id, 2));
    expect(tooLarge.statusCode).toBe(422);
    expect(tooLarge.json().errors[0].code).toBe('total_too_large');
    const tooLargeAgain = await buy(appB, 'k-422', purchaseBody(id, 2));
    expect(tooLargeAgain.statusCode).toBe(422);
    expect(tooLargeAgain.headers['idempotent-replayed']).toBe('true');
    expect(tooLargeAgain.body).toBe(tooLarge.body);
    expect(await written(id)).toEqual({ stock: 5, purchases: 0, events: 0 });
  });

  it('keys are scoped to the API key: the same key from another client is another request', async () => {
    const id = await createProductIn(products.app, 1, 'Idempotente');
    await setStockIn(appA, id, 10);
    const key = randomUUID();
    const mine = await buy(appA, key, purchaseBody(id, 1));
    const theirs = await buy(appB, key, purchaseBody(id, 1), SECOND_KEY);
    expect(mine.statusCode).toBe(201);
    expect(theirs.statusCode).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect(theirs.json().data.id).not.toBe(mine.json().data.id);
    // Another body under the other client's scope is no conflict with ours either.
    const other = await buy(appA, randomUUID(), purchaseBody(id, 2), SECOND_KEY);
    expect(other.statusCode).toBe(201);
    expect(await written(id)).toMatchObject({ stock: 6, purchases: 3 });

    const theirsAgain = await buy(appA, key, purchaseBody(id, 1), SECOND_KEY);
    expect(theirsAgain.headers['idempotent-replayed']).toBe('true');
    expect(theirsAgain.body).toBe(theirs.body);
  });

  it('requests without a key are never de-duplicated', async () => {
    const id = await createProductIn(products.app, 1, 'Idempotente');
    await setStockIn(appA, id, 10);
    const [a, b] = await Promise.all([
      buy(appA, undefined, purchaseBody(id, 1)),
      buy(appB, undefined, purchaseBody(id, 1)),
    ]);
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    expect(a.headers['idempotent-replayed']).toBeUndefined();
    expect(await written(id)).toMatchObject({ stock: 8, purchases: 2 });
  });
});

describe('the header', () => {
  it('refuses a malformed key with 400 naming the header, writing nothing', async () => {
    const id = await createProductIn(products.app, 1, 'Idempotente');
    await setStockIn(appA, id, 10);
    const before = await written(id);
    for (const bad of ['', 'with space', 'x'.repeat(256), 'clave-ñ', 'tab\tinside']) {
      const res = await buy(appA, bad, purchaseBody(id, 1));
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
      expect(res.headers['content-type']).toBe(JSONAPI);
      const [error] = res.json().errors;
      expect(error.source).toEqual({ header: 'Idempotency-Key' });
      expect(error.detail).toMatch(/Idempotency-Key/);
    }
    // Two Idempotency-Key headers: which one would the retry send?
    const twice = await appA.inject({
      method: 'POST',
      url: '/api/purchases',
      headers: { ...headers, 'idempotency-key': ['a', 'b'] },
      payload: JSON.stringify(purchaseBody(id, 1)),
    });
    expect(twice.statusCode).toBe(400);
    expect(twice.json().errors[0].source).toEqual({ header: 'Idempotency-Key' });
    expect(await written(id)).toEqual(before);
    expect(await keyRow('with space')).toEqual([]);
  });

  it('accepts 1 to 255 visible ASCII characters', async () => {
    const id = await createProductIn(products.app, 1, 'Idempotente');
    await setStockIn(appA, id, 10);
    const edge = `${'~'.repeat(127)}!${'"'.repeat(127)}`;
    expect(edge).toHaveLength(255);
    for (const key of ['!', edge, `${randomUUID()}:{"quoted"}`]) {
      const res = await buy(appA, key, purchaseBody(id, 1));
      expect(res.statusCode, key).toBe(201);
    }
    expect(await written(id)).toMatchObject({ stock: 7, purchases: 3 });
  });
});

describe('claims', () => {
  it('a claim still in its lease answers 409; a claim whose lease ran out is taken over', async () => {
    const id = await createProductIn(products.app, 1, 'Idempotente');
    await setStockIn(appA, id, 10);
    const body = purchaseBody(id, 1);
    const clientId = clientIdOf(API_KEY);
    const fingerprint = fingerprintOf(ENDPOINT, body);
    await db.pool.query(
      `INSERT INTO idempotency_keys (client_id, key, fingerprint, token, lease_until)
       VALUES ($1, 'live', $2, gen_random_uuid(), now() + interval '1 minute'),
              ($1, 'stale', $2, gen_random_uuid(), now() - interval '1 second')`,
      [clientId, fingerprint],
    );
    const live = await buy(appA, 'live', body);
    expect(live.statusCode).toBe(409);
    expect(live.json().errors[0].code).toBe('idempotency_key_in_flight');

    const stale = await buy(appB, 'stale', body);
    expect(stale.statusCode).toBe(201);
    expect(stale.headers['idempotent-replayed']).toBeUndefined();
    expect(await written(id)).toMatchObject({ stock: 9, purchases: 1 });
    expect(await keyRow('stale', clientId)).toEqual([{ state: 'done', response_status: 201 }]);
  });

  it('a request whose claim was taken over meanwhile rolls its purchase back', async () => {
    const id = await createProductIn(products.app, 1, 'Idempotente');
    await setStockIn(appA, id, 10);
    const scope = { clientId: 'test-client', key: randomUUID(), fingerprint: 'f' };
    const deps = { pool: db.pool, leaseSeconds: 60, log: pino({ level: 'silent' }) };
    const attempt = idempotent(deps, scope, async (store) => {
      // Another attempt takes the key over while this one works (its lease had run out).
      await db.pool.query(`UPDATE idempotency_keys SET token = gen_random_uuid() WHERE key = $1`, [
        scope.key,
      ]);
      return withTransaction(db.pool, async (tx) => {
        const outcome = await recordPurchase(tx, {
          productoId: id,
          cantidad: 4,
          unitario: '1.00',
          total: '4.00',
        });
        expect(outcome.ok).toBe(true);
        return store(tx, { status: 201, location: null, body: '{}' });
      });
    });
    await expect(attempt).rejects.toMatchObject({ status: 409, code: 'idempotency_key_in_flight' });
    expect(await written(id)).toEqual({ stock: 10, purchases: 0, events: 0 });
  });

  it('the stored response commits with the purchase: a purchase that fails to commit leaves no response', async () => {
    const id = await createProductIn(products.app, 1, 'Idempotente');
    await setStockIn(appA, id, 10);
    const scope = { clientId: 'test-client', key: randomUUID(), fingerprint: 'f' };
    const deps = { pool: db.pool, leaseSeconds: 60, log: pino({ level: 'silent' }) };
    const attempt = idempotent(deps, scope, (store) =>
      withTransaction(db.pool, async (tx) => {
        await recordPurchase(tx, { productoId: id, cantidad: 4, unitario: '1.00', total: '4.00' });
        await store(tx, { status: 201, location: null, body: '{}' });
        throw new Error('the connection broke before COMMIT');
      }),
    );
    await expect(attempt).rejects.toThrow('before COMMIT');
    expect(await written(id)).toEqual({ stock: 10, purchases: 0, events: 0 });
    // Released, not stored: the retry will buy.
    expect(await keyRow(scope.key)).toEqual([]);
  });
});

describe('Products unavailable', () => {
  let fake: { server: Server; url: string; status: number; precio: number };
  let app: App;

  beforeAll(async () => {
    fake = { server: createServer(), url: '', status: 503, precio: 5 };
    fake.server.on('request', (req, res) => {
      const id = /\/api\/products\/(\d+)$/.exec(req.url ?? '')?.[1];
      res.writeHead(fake.status, { 'content-type': JSONAPI });
      res.end(
        JSON.stringify(
          fake.status === 200
            ? { data: fakeProduct(Number(id), fake.precio) }
            : { errors: [{ status: String(fake.status), title: 'x', detail: 'x' }] },
        ),
      );
    });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    app = await buildInventory(db.url, fake.url, { OUTBOX_RELAY: 'off', PRODUCTS_RETRIES: '1' });
  });

  afterAll(async () => {
    await app?.close();
    await new Promise((resolve) => fake?.server.close(resolve));
  });

  it('a 503 releases the key, so the retry after Products returns buys', async () => {
    // An id far from the real Products' ids, so no other test touches this stock row.
    const id = 1_900_000_001;
    fake.status = 200;
    await setStockIn(app, id, 10);
    fake.status = 503;
    const key = randomUUID();
    const down = await buy(app, key, purchaseBody(id, 2));
    expect(down.statusCode).toBe(503);
    expect(down.json().errors[0].detail).toBe('Servicio de productos no disponible');
    expect(await keyRow(key)).toEqual([]);

    fake.status = 200;
    const retry = await buy(app, key, purchaseBody(id, 2));
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(await written(id)).toEqual({ stock: 8, purchases: 1, events: 1 });
  });
});

describe('housekeeping, configuration and helpers', () => {
  it('keeps keys 24 hours by default and never less; the lease defaults to 60 s', () => {
    const base = { DATABASE_URL: 'postgres://u@h/db' };
    expect(loadConfig(base).idempotency).toEqual({ ttlHours: 24, leaseSeconds: 60 });
    expect(
      loadConfig({ ...base, IDEMPOTENCY_TTL_HOURS: '48', IDEMPOTENCY_LEASE_SECONDS: '5' }).idempotency,
    ).toEqual({ ttlHours: 48, leaseSeconds: 5 });
    expect(() => loadConfig({ ...base, IDEMPOTENCY_TTL_HOURS: '23' })).toThrow(/IDEMPOTENCY_TTL_HOURS/);
  });

  it('purges keys older than the TTL and keeps younger ones', async () => {
    await db.pool.query(
      `INSERT INTO idempotency_keys (client_id, key, fingerprint, state, token, response_status, response_body, created_at)
       VALUES ('purge-test', 'old', 'f', 'done', gen_random_uuid(), 201, '{}', now() - interval '25 hours'),
              ('purge-test', 'young', 'f', 'done', gen_random_uuid(), 201, '{}', now() - interval '23 hours')`,
    );
    expect(await purgeKeys(db.pool, 24, 1)).toBeGreaterThanOrEqual(1);
    const { rows } = await db.pool.query(`SELECT key FROM idempotency_keys WHERE client_id = 'purge-test'`);
    expect(rows).toEqual([{ key: 'young' }]);
  });

  it('canonical JSON ignores member order but not values', () => {
    expect(canonicalJson({ b: [1, { y: 2, x: 'é' }], a: null })).toBe('{"a":null,"b":[1,{"x":"é","y":2}]}');
    expect(fingerprintOf(ENDPOINT, { a: 1, b: 2 })).toBe(fingerprintOf(ENDPOINT, { b: 2, a: 1 }));
    expect(fingerprintOf(ENDPOINT, { a: 1 })).not.toBe(fingerprintOf(ENDPOINT, { a: 2 }));
    expect(fingerprintOf(ENDPOINT, { a: 1 })).not.toBe(fingerprintOf('POST /api/other', { a: 1 }));
  });
});

/** The client id the kit derives from an API key (the key's SHA-256 hex), as the service stores it. */
const clientIdOf = (apiKey: string) => createHash('sha256').update(apiKey).digest('hex');
