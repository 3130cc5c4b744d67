import { type AddressInfo, connect as connectTcp, createServer, type Socket } from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createProductCache, type ProductCacheOptions } from '../src/products/products.cache.js';
import type { ProductRow } from '../src/products/products.repository.js';
import {
  API_KEY,
  createProduct,
  itAnsweredNoServerError,
  type ProductsApp,
  send,
  updateBody,
  useProductsApp,
} from './helpers.js';

const ctx = useProductsApp();
let other: ProductsApp;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(10);
  }
}

async function metric(app: ProductsApp, series: string): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  // Without the service label every app adds, a series reads as it is written here.
  const lines = res.body.split('\n').map((l) => l.replace(/,?service="products"/, '').replace('{}', ''));
  const line = lines.find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

const HITS = 'product_cache_lookups_total{result="hit"}';
const MISSES = 'product_cache_lookups_total{result="miss"}';
const listening = (app: ProductsApp) => metric(app, 'product_cache_listening');
const waitListening = async (app: ProductsApp) =>
  expect(
    await eventually(
      () => listening(app),
      (v) => v === 1,
    ),
  ).toBe(1);

async function read(app: ProductsApp, id: string) {
  const res = await send(app, 'GET', `/api/products/${id}`);
  return {
    status: res.statusCode,
    precio: res.statusCode === 200 ? res.json().data.attributes.precio : null,
  };
}

type Read = Awaited<ReturnType<typeof read>>;
/** Reads the product until `done` holds (or 5 s have passed), and answers the last read. */
const readWhen = (app: ProductsApp, id: string, done: (r: Read) => boolean) =>
  eventually(() => read(app, id), done);

let tags = 0;
/** A name no other test's products contain, so a page filtered by it holds only this test's products. */
const uniqueName = () => `Página ${process.pid}-${++tags}-${Math.random().toString(36).slice(2)}`;

async function readPage(app: ProductsApp, nombre: string) {
  const res = await send(
    app,
    'GET',
    `/api/products?filter[nombre]=${encodeURIComponent(nombre)}&page[size]=100`,
  );
  expect(res.statusCode, res.body).toBe(200);
  const document = res.json();
  return {
    total: document.meta.total as number,
    precios: (document.data as { attributes: { precio: number } }[]).map((p) => p.attributes.precio),
  };
}

type Page = Awaited<ReturnType<typeof readPage>>;
/** Reads the page until `done` holds (or 5 s have passed), and answers the last read. */
const readPageWhen = (app: ProductsApp, nombre: string, done: (p: Page) => boolean) =>
  eventually(() => readPage(app, nombre), done);

const PAGE_HITS = 'product_page_cache_lookups_total{result="hit"}';
const PAGE_MISSES = 'product_page_cache_lookups_total{result="miss"}';

/** One more instance on the test's database, configured by `env` besides. */
const startInstance = (env: Record<string, string> = {}) =>
  buildApp(
    loadConfig({
      DATABASE_URL: ctx.db().url,
      API_KEYS: API_KEY,
      LOG_LEVEL: 'silent',
      METRICS_CACHE_MS: '0',
      ...env,
    }),
    pino({ level: 'silent' }),
  );

/** Another instance on the same database: the one that did not make the change. */
beforeAll(async () => {
  other = await startInstance();
  await waitListening(ctx.app());
  await waitListening(other);
});

afterAll(async () => {
  await other?.close();
});

describe('the product cache', () => {
  it('answers repeated reads from memory, with the same document as the database', async () => {
    const product = await createProduct(ctx.app(), { nombre: 'Cacheado', precio: 12.5 });
    const first = await send(ctx.app(), 'GET', `/api/products/${product.id}`);
    const [hits, misses] = [await metric(ctx.app(), HITS), await metric(ctx.app(), MISSES)];
    const again = await Promise.all(
      [1, 2, 3].map(() => send(ctx.app(), 'GET', `/api/products/${product.id}`)),
    );
    for (const res of again) expect(res.body).toBe(first.body);
    expect(await metric(ctx.app(), HITS)).toBe(hits + 3);
    expect(await metric(ctx.app(), MISSES)).toBe(misses);
  });

  it('does not keep a product it did not find: one created afterwards is found at once', async () => {
    const next = await ctx
      .db()
      .pool.query<{ id: string }>("SELECT nextval(pg_get_serial_sequence('productos', 'id')) + 1 AS id");
    const id = next.rows[0]!.id;
    expect((await read(ctx.app(), id)).status).toBe(404);
    const created = await createProduct(ctx.app(), { precio: 3 });
    expect(created.id).toBe(id);
    expect(await read(ctx.app(), id)).toEqual({ status: 200, precio: 3 });
  });

  it('the instance that changes a product answers the new version at once (read your writes)', async () => {
    const product = await createProduct(ctx.app(), { precio: 1 });
    for (let precio = 2; precio <= 30; precio++) {
      await read(ctx.app(), product.id);
      const res = await send(ctx.app(), 'PATCH', `/api/products/${product.id}`, {
        body: updateBody(product.id, { precio }),
      });
      expect(res.statusCode).toBe(200);
      expect(await read(ctx.app(), product.id)).toEqual({ status: 200, precio });
    }
    await read(ctx.app(), product.id);
    await send(ctx.app(), 'DELETE', `/api/products/${product.id}`);
    expect((await read(ctx.app(), product.id)).status).toBe(404);
  });

  it('another instance, and any SQL writer, is seen as soon as PostgreSQL delivers the notification', async () => {
    const product = await createProduct(ctx.app(), { precio: 5 });
    expect(await read(other, product.id)).toEqual({ status: 200, precio: 5 });

    await send(ctx.app(), 'PATCH', `/api/products/${product.id}`, {
      body: updateBody(product.id, { precio: 6 }),
    });
    const started = performance.now();
    expect(await readWhen(other, product.id, (r) => r.precio === 6)).toEqual({
      status: 200,
      precio: 6,
    });
    console.log(
      `[cache] another instance saw the change after ${(performance.now() - started).toFixed(1)} ms`,
    );

    await ctx.db().pool.query('UPDATE productos SET precio = 7 WHERE id = $1', [product.id]);
    expect((await readWhen(other, product.id, (r) => r.precio === 7)).precio).toBe(7);
    expect((await readWhen(ctx.app(), product.id, (r) => r.precio === 7)).precio).toBe(7);

    await ctx.db().pool.query('DELETE FROM productos WHERE id = $1', [product.id]);
    expect((await readWhen(other, product.id, (r) => r.status === 404)).status).toBe(404);
  });

  it('a truncate empties every instance’s cache', async () => {
    const product = await createProduct(ctx.app(), { precio: 8 });
    expect((await read(other, product.id)).status).toBe(200);
    const client = await ctx.db().pool.connect();
    try {
      // Emptied and refilled in one transaction: the product is back at another price, and only the
      // truncate's notification can tell the caches.
      await client.query('BEGIN');
      await client.query('TRUNCATE productos');
      await client.query('INSERT INTO productos (id, nombre, precio) VALUES ($1, $2, 9)', [
        product.id,
        'Otro',
      ]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await readWhen(other, product.id, (r) => r.precio === 9)).toEqual({
      status: 200,
      precio: 9,
    });
  });

  it('under reads interleaved with SQL writes, every read after a change has settled answers that change', async () => {
    // A read that started before a commit and ends after its notification must not be kept: if it
    // were, the old version would be served until the entry expires.
    const product = await createProduct(ctx.app(), { precio: 1 });
    let stale = 0;
    for (let precio = 2; precio <= 41; precio++) {
      const readers = Array.from({ length: 16 }, (_, i) => sleep(i % 4).then(() => read(other, product.id)));
      const write = ctx
        .db()
        .pool.query('UPDATE productos SET precio = $2 WHERE id = $1', [product.id, precio]);
      await Promise.all([...readers, write]);
      await readWhen(other, product.id, (r) => r.precio === precio);
      // Settled: from now on, every read must answer this version.
      const after = await Promise.all(Array.from({ length: 8 }, () => read(other, product.id)));
      stale += after.filter((r) => r.precio !== precio).length;
    }
    expect(stale).toBe(0);
  });

  it('a lost listener: a change made meanwhile is still read, and it subscribes again by itself', async () => {
    const product = await createProduct(ctx.app(), { precio: 10 });
    await read(other, product.id);
    const terminated = await ctx.db().pool.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE application_name = 'products-cache-listener' AND datname = current_database()`,
    );
    expect(terminated.rowCount).toBe(2);
    // Nobody hears of this change: the cache is off until it subscribes again, and starts empty.
    // The instances notice the loss when the connection's close reaches them, a moment after the
    // termination; until then they may still answer from memory, as for a notification in transit.
    await ctx.db().pool.query('UPDATE productos SET precio = 11 WHERE id = $1', [product.id]);
    expect(await readWhen(other, product.id, (r) => r.precio === 11)).toEqual({ status: 200, precio: 11 });
    await waitListening(other);
    await waitListening(ctx.app());
    const hits = await metric(other, HITS);
    expect(await read(other, product.id)).toEqual({ status: 200, precio: 11 });
    expect(await read(other, product.id)).toEqual({ status: 200, precio: 11 });
    expect(await metric(other, HITS)).toBe(hits + 1);
  });

  it('PRODUCT_CACHE_SIZE=0 turns it off: every read goes to the database', async () => {
    const uncached = await startInstance({ PRODUCT_CACHE_SIZE: '0' });
    try {
      const product = await createProduct(uncached, { precio: 20 });
      expect(await read(uncached, product.id)).toEqual({ status: 200, precio: 20 });
      await ctx.db().pool.query('UPDATE productos SET precio = 21 WHERE id = $1', [product.id]);
      expect(await read(uncached, product.id)).toEqual({ status: 200, precio: 21 });
      expect(Number.isNaN(await listening(uncached))).toBe(true);
    } finally {
      await uncached.close();
    }
  });
});

describe('products by id (filter[id])', () => {
  async function readByIds(app: ProductsApp, ids: string[], query = '') {
    const res = await send(app, 'GET', `/api/products?filter[id]=${ids.join(',')}${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as {
      data: { id: string; attributes: { precio: number } }[];
      meta: { total: number };
    };
  }

  it('are answered from the product cache, product by product, with the documents of single reads', async () => {
    const products = await Promise.all([1, 2, 3].map((precio) => createProduct(ctx.app(), { precio })));
    const ids = products.map((p) => p.id);
    const singles = await Promise.all(
      ids.map(async (id) => (await send(ctx.app(), 'GET', `/api/products/${id}`)).json().data),
    );
    const [hits, misses] = [await metric(ctx.app(), HITS), await metric(ctx.app(), MISSES)];
    const [pageHits, pageMisses] = [await metric(ctx.app(), PAGE_HITS), await metric(ctx.app(), PAGE_MISSES)];
    const page = await readByIds(ctx.app(), [ids[2]!, ids[0]!, ids[1]!, '2147483647']);
    // In id order, whatever order they were asked for (created at once, their ids may be in any order).
    expect(page.data).toEqual([...singles].sort((a, b) => Number(a.id) - Number(b.id)));
    expect(page.meta.total).toBe(3);
    // Each product found counts as a hit; the unknown id is a miss, looked for in the database.
    expect(await metric(ctx.app(), HITS)).toBe(hits + 3);
    expect(await metric(ctx.app(), MISSES)).toBe(misses + 1);
    expect(await metric(ctx.app(), PAGE_HITS)).toBe(pageHits);
    expect(await metric(ctx.app(), PAGE_MISSES)).toBe(pageMisses);
  });

  it('keep the order and window they ask for', async () => {
    const products = await Promise.all([4, 5, 6].map((precio) => createProduct(ctx.app(), { precio })));
    const ids = products.map((p) => p.id);
    const idsOf = (page: { data: { id: string }[] }) => page.data.map((p) => p.id);
    const ascending = [...ids].sort((a, b) => Number(a) - Number(b));
    expect(idsOf(await readByIds(ctx.app(), ids, '&sort=-id'))).toEqual([...ascending].reverse());
    const second = await readByIds(ctx.app(), ids, '&page[size]=2&page[number]=2');
    expect(idsOf(second)).toEqual([ascending[2]]);
    expect(second.meta.total).toBe(3);
    // Another order than by id is the whole page's, from the database: the same products.
    expect(idsOf(await readByIds(ctx.app(), ids, '&sort=-precio'))).toEqual([...ids].reverse());
  });

  it('see a change at once on the instance that made it, and on another once notified', async () => {
    const product = await createProduct(ctx.app(), { precio: 7 });
    const precioOf = async (app: ProductsApp) =>
      (await readByIds(app, [product.id])).data[0]?.attributes.precio;
    expect(await precioOf(ctx.app())).toBe(7);
    expect(await precioOf(other)).toBe(7);
    for (let precio = 8; precio <= 12; precio++) {
      await send(ctx.app(), 'PATCH', `/api/products/${product.id}`, {
        body: updateBody(product.id, { precio }),
      });
      expect(await precioOf(ctx.app())).toBe(precio);
      expect(
        await eventually(
          () => precioOf(other),
          (p) => p === precio,
        ),
      ).toBe(precio);
    }
    await ctx.db().pool.query('UPDATE productos SET precio = 13 WHERE id = $1', [product.id]);
    expect(
      await eventually(
        () => precioOf(other),
        (p) => p === 13,
      ),
    ).toBe(13);
    await send(ctx.app(), 'DELETE', `/api/products/${product.id}`);
    expect((await readByIds(ctx.app(), [product.id])).meta.total).toBe(0);
  });
});

describe('the page cache', () => {
  it('answers a repeated page from memory, with the same document as the database', async () => {
    const nombre = uniqueName();
    await createProduct(ctx.app(), { nombre, precio: 1 });
    const url = `/api/products?filter[nombre]=${encodeURIComponent(nombre)}`;
    // The insert's own notification forgets every page whenever it arrives: until it has, a
    // repeated read may miss. Once it has, the repeat is a hit and the database is not asked.
    const repeat = async () => {
      const first = await send(ctx.app(), 'GET', url);
      const [hits, misses] = [await metric(ctx.app(), PAGE_HITS), await metric(ctx.app(), PAGE_MISSES)];
      // The same criteria spelt differently are one page; the links still follow each request.
      const again = await send(ctx.app(), 'GET', `${url}&sort=id&page[number]=1`);
      const counted = {
        hits: (await metric(ctx.app(), PAGE_HITS)) - hits,
        misses: (await metric(ctx.app(), PAGE_MISSES)) - misses,
      };
      return { first: first.json(), again: again.json(), counted };
    };
    const { first, again, counted } = await eventually(repeat, (r) => r.counted.hits === 1, 10_000);
    expect(counted).toEqual({ hits: 1, misses: 0 });
    expect(again.data).toEqual(first.data);
    expect(again.meta).toEqual(first.meta);
    expect(again.links.self).toContain('sort=id');
  });

  it('the instance that adds, changes or deletes a product answers the new pages at once', async () => {
    const nombre = uniqueName();
    const ids: string[] = [];
    for (let n = 1; n <= 15; n++) {
      await readPage(ctx.app(), nombre);
      ids.push((await createProduct(ctx.app(), { nombre, precio: n })).id);
      expect((await readPage(ctx.app(), nombre)).total).toBe(n);
    }
    for (const [index, id] of ids.entries()) {
      await readPage(ctx.app(), nombre);
      await send(ctx.app(), 'PATCH', `/api/products/${id}`, {
        body: updateBody(id, { precio: 100 + index }),
      });
      expect((await readPage(ctx.app(), nombre)).precios[index]).toBe(100 + index);
    }
    for (const [index, id] of ids.entries()) {
      await readPage(ctx.app(), nombre);
      await send(ctx.app(), 'DELETE', `/api/products/${id}`);
      expect((await readPage(ctx.app(), nombre)).total).toBe(ids.length - index - 1);
    }
  });

  it('another instance, and any SQL writer, is seen: inserts, updates, deletes and truncates', async () => {
    const nombre = uniqueName();
    await createProduct(ctx.app(), { nombre, precio: 1 });
    expect(await readPage(other, nombre)).toEqual({ total: 1, precios: [1] });

    await ctx.db().pool.query('INSERT INTO productos (nombre, precio) VALUES ($1, 2), ($1, 3)', [nombre]);
    expect(await readPageWhen(other, nombre, (p) => p.total === 3)).toEqual({ total: 3, precios: [1, 2, 3] });
    await ctx.db().pool.query('UPDATE productos SET precio = precio * 10 WHERE nombre = $1', [nombre]);
    expect((await readPageWhen(other, nombre, (p) => p.precios[0] === 10)).precios).toEqual([10, 20, 30]);
    await ctx.db().pool.query('DELETE FROM productos WHERE nombre = $1 AND precio = 20', [nombre]);
    expect(await readPageWhen(other, nombre, (p) => p.total === 2)).toEqual({ total: 2, precios: [10, 30] });

    const client = await ctx.db().pool.connect();
    try {
      // Emptied and refilled in one transaction, with the insert's notification in it too: only the
      // truncate's tells the caches that the refilled rows are not the ones they hold.
      await client.query('BEGIN');
      await client.query('TRUNCATE productos');
      await client.query('INSERT INTO productos (nombre, precio) VALUES ($1, 4)', [nombre]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await readPageWhen(other, nombre, (p) => p.total === 1)).toEqual({ total: 1, precios: [4] });
  });

  it('PRODUCT_PAGE_CACHE_MB=0 turns pages off and keeps the product cache', async () => {
    const unpaged = await startInstance({ PRODUCT_PAGE_CACHE_MB: '0' });
    try {
      await waitListening(unpaged);
      const nombre = uniqueName();
      const product = await createProduct(unpaged, { nombre, precio: 5 });
      await readPage(unpaged, nombre);
      await read(unpaged, product.id);
      await readPage(unpaged, nombre);
      await read(unpaged, product.id);
      expect(await metric(unpaged, PAGE_HITS)).toBe(0);
      expect(await metric(unpaged, PAGE_MISSES)).toBe(2);
      expect(await metric(unpaged, HITS)).toBe(1);
    } finally {
      await unpaged.close();
    }
  });
});

describe('the cache on its own', () => {
  const row = (precio: string): ProductRow => ({
    id: 1,
    nombre: 'x',
    precio,
    descripcion: null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
  });

  /** A load that returns `value` only when the test says so, to hold a read open across a change. */
  function heldLoad(value: ProductRow) {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    return { load: () => held.then(() => value), release };
  }

  async function withCache(
    run: (
      cache: ReturnType<typeof createProductCache>,
      listening: () => Promise<number | undefined>,
      notified: (payload: string) => Promise<void>,
    ) => Promise<void>,
    overrides: Partial<ProductCacheOptions> = {},
  ) {
    const registry = new Registry();
    // The cache logs each notification it handles (at trace level): a test waits for that line
    // rather than for a delay a loaded machine might outlast.
    const handled: string[] = [];
    const log = pino(
      { level: 'trace' },
      {
        write: (line: string) => {
          const entry = JSON.parse(line) as { msg: string; payload?: string };
          if (entry.msg === 'product cache notified' && entry.payload !== undefined)
            handled.push(entry.payload);
        },
      },
    );
    const notified = async (payload: string) => {
      await expect.poll(() => handled.includes(payload), { timeout: 10_000 }).toBe(true);
    };
    const cache = createProductCache({
      databaseUrl: ctx.db().url,
      size: 100,
      ttlMs: 60_000,
      pageBytes: 1024 * 1024,
      log,
      registry,
      ...overrides,
    });
    const listening = async () =>
      (await registry.getSingleMetric('product_cache_listening')!.get()).values[0]?.value;
    try {
      expect(await eventually(listening, (v) => v === 1)).toBe(1);
      await run(cache, listening, notified);
    } finally {
      await cache.close();
    }
  }

  it('is not kept when this instance changed the product meanwhile', () =>
    withCache(async (cache) => {
      const { load, release } = heldLoad(row('1.00'));
      const reading = cache.read(1, load);
      cache.forget(1);
      release();
      expect((await reading)?.precio).toBe('1.00');
      expect((await cache.read(1, async () => row('2.00')))?.precio).toBe('2.00');
    }));

  it('is not kept when a notification of a change arrived meanwhile', () =>
    withCache(async (cache, _listening, notified) => {
      const product = await createProduct(ctx.app(), { precio: 1 });
      const id = Number(product.id);
      const { load, release } = heldLoad({ ...row('1.00'), id });
      const reading = cache.read(id, load);
      await ctx.db().pool.query('UPDATE productos SET precio = 2 WHERE id = $1', [id]);
      await notified(String(id));
      release();
      await reading;
      expect((await cache.read(id, async () => ({ ...row('2.00'), id })))?.precio).toBe('2.00');
    }));

  it('keeps none of several products loaded together while one of them changed, and serves the kept', () =>
    withCache(async (cache) => {
      const rowOf = (id: number, precio: string) => ({ ...row(precio), id });
      const loads: number[][] = [];
      const load = (precio: string) => async (missing: number[]) => {
        loads.push(missing);
        return missing.map((id) => rowOf(id, precio));
      };
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const reading = cache.readMany([1, 2], (missing) => held.then(() => load('1.00')(missing)));
      cache.forget(2);
      release();
      expect((await reading).map((r) => r.precio)).toEqual(['1.00', '1.00']);
      // Neither was kept: both are loaded again, then both kept and served with a third loaded alone.
      expect((await cache.readMany([2, 1], load('2.00'))).map((r) => r.id)).toEqual([2, 1]);
      const mixed = await cache.readMany([3, 1, 2], load('3.00'));
      expect(mixed.map((r) => [r.id, r.precio])).toEqual([
        [1, '2.00'],
        [2, '2.00'],
        [3, '3.00'],
      ]);
      expect(loads.slice(1)).toEqual([[2, 1], [3]]);
    }));

  it('keeps no page loaded while a product changed or was added, here or by notification', () =>
    withCache(async (cache, _listening, notified) => {
      const page = (total: number) => ({ rows: [row('1.00')], total });
      const loads = { count: 0 };
      const counted = (total: number) => async () => {
        loads.count++;
        return page(total);
      };
      const changes = [
        async () => cache.forget(1),
        async () => cache.forgetPages(),
        async () => {
          await ctx.db().pool.query('INSERT INTO productos (nombre, precio) VALUES ($1, 1)', [uniqueName()]);
          // An insert is notified as '+': it forgets the pages.
          await notified('+');
        },
      ];
      for (const change of changes) {
        const { load, release } = heldLoad(row('1.00'));
        const reading = cache.readPage('k', () => load().then((r) => ({ rows: [r], total: 1 })));
        await change();
        release();
        await reading;
        loads.count = 0;
        expect((await cache.readPage('k', counted(2))).total).toBe(2);
        expect((await cache.readPage('k', counted(3))).total).toBe(2);
        expect(loads.count).toBe(1);
        cache.forgetPages();
      }
    }));

  it('keeps pages up to their weight in bytes, dropping the least recently read', () =>
    withCache(
      async (cache) => {
        // About 2 × 2 000 bytes of text per row: three such pages fit in 15 000 bytes, four do not.
        const heavy = (n: number) => ({
          rows: [{ ...row('1.00'), id: n, descripcion: 'd'.repeat(2_000) }],
          total: n,
        });
        let loads = 0;
        const load = (n: number) => async () => {
          loads++;
          return heavy(n);
        };
        for (const n of [1, 2, 3]) await cache.readPage(`p${n}`, load(n));
        for (const n of [1, 2, 3]) await cache.readPage(`p${n}`, load(n));
        expect(loads).toBe(3);
        await cache.readPage('p4', load(4));
        await cache.readPage('p1', load(1));
        expect(loads).toBe(5);
        // A page heavier than the whole bound is answered, never kept.
        const huge = async () => {
          loads++;
          return { rows: [{ ...row('1.00'), descripcion: 'd'.repeat(10_000) }], total: 1 };
        };
        await cache.readPage('huge', huge);
        await cache.readPage('huge', huge);
        expect(loads).toBe(7);
      },
      { pageBytes: 15_000 },
    ));

  it('forgets pages cheaply however many it once kept: one update of many rows does not stall it', () =>
    withCache(
      async (cache) => {
        // Every notified row forgets the pages. Once 50 000 pages had been kept, LRU.clear() cost
        // ~160 µs even on an empty cache (it walks arrays as long as the most entries ever held), so
        // the notifications of a 20 000-row update held the event loop for over 3 s.
        for (let n = 0; n < 50_000; n++) await cache.readPage(`p${n}`, async () => ({ rows: [], total: n }));
        cache.forgetPages();
        const started = performance.now();
        for (let n = 0; n < 20_000; n++) cache.forgetPages();
        const ms = performance.now() - started;
        console.log(`[cache] 20 000 page forgets after 50 000 pages kept: ${ms.toFixed(1)} ms`);
        // A few milliseconds when cheap, seconds when not: the bound leaves a loaded machine its margin.
        expect(ms).toBeLessThan(1_000);
      },
      { pageBytes: 64 * 1024 * 1024 },
    ));

  it('answers every read from the database while its listener is down', () =>
    withCache(
      async (cache, listening) => {
        let loads = 0;
        const load = async () => {
          loads++;
          return row('1.00');
        };
        await cache.read(1, load);
        await cache.read(1, load);
        expect(loads).toBe(1);
        await ctx.db().pool.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = 'products-cache-listener' AND datname = current_database()`,
        );
        expect(await eventually(listening, (v) => v === 0)).toBe(0);
        await cache.read(1, load);
        await cache.read(1, load);
        expect(loads).toBe(3);
      },
      { reconnectMs: 60_000 },
    ));

  it('notices a listener connection that went silent without closing, by its heartbeat', async () => {
    // A TCP relay to PostgreSQL that can stop passing bytes while keeping both connections open.
    const target = new URL(ctx.db().url);
    const sockets: Socket[] = [];
    let silent = false;
    const relay = createServer((downstream) => {
      const upstream = connectTcp(Number(target.port), target.hostname);
      sockets.push(downstream, upstream);
      downstream.on('data', (chunk) => void (silent || upstream.write(chunk)));
      upstream.on('data', (chunk) => void (silent || downstream.write(chunk)));
      for (const socket of [downstream, upstream]) socket.on('error', () => {});
      downstream.on('close', () => upstream.destroy());
      upstream.on('close', () => downstream.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const url = new URL(ctx.db().url);
    url.port = String((relay.address() as AddressInfo).port);
    try {
      await withCache(
        async (_cache, listening) => {
          silent = true;
          const started = performance.now();
          // Within a few heartbeats; TCP keepalive alone would take minutes. Generous for a loaded machine.
          expect(await eventually(listening, (v) => v === 0, 8_000)).toBe(0);
          const ms = Math.round(performance.now() - started);
          console.log(`[cache] a silent listener connection was given up after ${ms} ms (heartbeat 100 ms)`);
        },
        { databaseUrl: url.toString(), heartbeatMs: 100, reconnectMs: 60_000 },
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => relay.close(resolve));
    }
  });
});

itAnsweredNoServerError(ctx);
