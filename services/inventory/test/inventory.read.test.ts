import { describe, expect, it } from 'vitest';
import {
  expectError,
  ISO_UTC,
  JSONAPI,
  MAX_INT,
  SECOND_KEY,
  send,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();
const get = (url: string, headers?: Record<string, string | undefined>) =>
  send(ctx.app(), 'GET', url, headers ? { headers } : {});

/** Inventory rows written straight to the database: listing them needs no product. */
async function insertRows(ids: number[], cantidad = 5) {
  await ctx
    .db()
    .pool.query('INSERT INTO inventario (producto_id, cantidad) SELECT id, $2 FROM unnest($1::int[]) AS id', [
      ids,
      cantidad,
    ]);
}

interface Page {
  data: { id: string; attributes: { producto_id: number } }[];
  links: { self: string; first: string; prev: null; next: string | null };
}

/** Follows links.next from `url` to the end and returns every page. */
async function allPages(url: string): Promise<Page[]> {
  const pages: Page[] = [];
  for (let next: string | null = url; next !== null; ) {
    const res = await get(next);
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json() as Page;
    pages.push(page);
    next = page.links.next;
    expect(pages.length).toBeLessThan(1000);
  }
  return pages;
}

describe('GET /api/inventory', () => {
  it('lists existing rows by producto_id with the resource shape and no included', async () => {
    await insertRows([900_001, 900_003], 7);
    const res = await get('/api/inventory?page[after]=900000&page[size]=2');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const body = res.json();
    expect(body.included).toBeUndefined();
    expect(body.data).toEqual(
      [900_001, 900_003].map((id) => ({
        type: 'inventories',
        id: String(id),
        attributes: {
          producto_id: id,
          cantidad: 7,
          reservado: 0,
          updated_at: expect.stringMatching(ISO_UTC),
        },
        relationships: { product: { data: { type: 'products', id: String(id) } } },
        links: { self: `/api/inventory/${id}` },
      })),
    );
    expect(body.links.self).toBe('/api/inventory?page[size]=2&page[after]=900000');
    expect(body.links.first).toBe('/api/inventory?page[size]=2');
    expect(body.links.prev).toBeNull();
  });

  it('visits every row exactly once, in order, following links.next', async () => {
    const ids = Array.from({ length: 23 }, (_, i) => 800_000 + i * 3);
    await insertRows(ids);
    const pages = await allPages('/api/inventory?page[size]=5');
    const seen = pages.flatMap((p) => p.data.map((r) => r.attributes.producto_id));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen).toEqual(expect.arrayContaining(ids));
    for (const page of pages) expect(page.data.length).toBeLessThanOrEqual(5);
    expect(pages.at(-1)!.links.next).toBeNull();
    const { rows } = await ctx.db().pool.query<{ n: number }>('SELECT count(*)::int AS n FROM inventario');
    expect(seen).toHaveLength(rows[0]!.n);
  });

  it('uses 20 rows per page by default and accepts page[size] 1 and 100', async () => {
    await insertRows(Array.from({ length: 25 }, (_, i) => 700_000 + i));
    const byDefault = await get('/api/inventory?page[after]=699999');
    expect(byDefault.json().data).toHaveLength(20);
    expect(byDefault.json().links.next).toBe('/api/inventory?page[size]=20&page[after]=700019');
    const one = await get('/api/inventory?page[size]=1&page[after]=699999');
    expect(one.json().data.map((r: { id: string }) => r.id)).toEqual(['700000']);
    const hundred = await get('/api/inventory?page[size]=100&page[after]=699999');
    expect(hundred.statusCode).toBe(200);
    expect(hundred.json().data.length).toBeGreaterThanOrEqual(25);
  });

  it('has next null on an exactly full last page', async () => {
    await insertRows([2_000_000_001, 2_000_000_002]);
    const res = await get('/api/inventory?page[size]=2&page[after]=2000000000');
    expect(res.json().data).toHaveLength(2);
    expect(res.json().links.next).toBeNull();
  });

  it.each(['0', '101', '-1', 'abc', '1.5', ''])('refuses page[size]=%s with 400 naming it', async (size) => {
    expectError(await get(`/api/inventory?page[size]=${size}`), 400, { parameter: 'page[size]' });
  });

  it.each(['0', '-3', 'x', '2147483648', '1e3'])(
    'refuses page[after]=%s with 400 naming it',
    async (after) => {
      expectError(await get(`/api/inventory?page[after]=${after}`), 400, { parameter: 'page[after]' });
    },
  );

  it('refuses an unknown query parameter with 400 naming it', async () => {
    const errors = expectError(await get('/api/inventory?sort=cantidad'), 400, { parameter: 'sort' });
    expect(errors[0]!.detail).toContain('sort');
    expectError(await get('/api/inventory?page[number]=2'), 400, { parameter: 'page[number]' });
  });

  it('answers 401 without a valid key and accepts every configured key', async () => {
    const missing = expectError(await get('/api/inventory', { 'x-api-key': undefined }), 401);
    expect(missing[0]!.detail).toBe('API Key inválida o ausente');
    expectError(await get('/api/inventory', { 'x-api-key': 'nope' }), 401);
    expect((await get('/api/inventory', { 'x-api-key': SECOND_KEY })).statusCode).toBe(200);
  });
});

describe('GET /api/inventory/{id}', () => {
  it('answers the stock with the product included exactly as Products returned it', async () => {
    const id = await ctx.createProduct(12.5, 'Lápiz');
    await ctx.setStock(id, 42);
    const res = await get(`/api/inventory/${id}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const fromProducts = await send(ctx.products().app, 'GET', `/api/products/${id}`);
    expect(res.json()).toEqual({
      data: {
        type: 'inventories',
        id: String(id),
        attributes: {
          producto_id: id,
          cantidad: 42,
          reservado: 0,
          updated_at: expect.stringMatching(ISO_UTC),
        },
        relationships: { product: { data: { type: 'products', id: String(id) } } },
        links: { self: `/api/inventory/${id}` },
      },
      included: [fromProducts.json().data],
      links: { self: `/api/inventory/${id}` },
    });
  });

  it('answers cantidad 0 since the product was created for a product without an inventory row, and creates none', async () => {
    const id = await ctx.createProduct(3);
    const res = await get(`/api/inventory/${id}`);
    expect(res.statusCode).toBe(200);
    const product = res.json().included[0];
    expect(product.id).toBe(String(id));
    expect(res.json().data.attributes).toEqual({
      producto_id: id,
      cantidad: 0,
      reservado: 0,
      updated_at: product.attributes.created_at,
    });
    expect(product.attributes.created_at).toMatch(ISO_UTC);
    expect(await stockOf(ctx.db(), id)).toBeUndefined();
  });

  it('answers 404 "Producto no encontrado" for a product Products does not know, even with a stock row', async () => {
    const missing = expectError(await get('/api/inventory/1999999999'), 404);
    expect(missing[0]!.detail).toBe('Producto no encontrado');
    const orphan = 1_999_999_998;
    await ctx.db().pool.query('INSERT INTO inventario (producto_id, cantidad) VALUES ($1, 3)', [orphan]);
    expect(expectError(await get(`/api/inventory/${orphan}`), 404)[0]!.detail).toBe('Producto no encontrado');
  });

  it.each(['0', '-1', 'abc', '1.5', '01', String(MAX_INT + 1), '99999999999', '%20'])(
    'refuses the id %s with 400 source.parameter',
    async (id) => {
      expectError(await get(`/api/inventory/${id}`), 400, { parameter: 'id' });
    },
  );

  it('accepts the largest integer id (and answers 404 for it)', async () => {
    expectError(await get(`/api/inventory/${MAX_INT}`), 404);
  });

  it('answers 401 without a key and 406 for an Accept it cannot honour', async () => {
    const id = await ctx.createProduct(1);
    expectError(await get(`/api/inventory/${id}`, { 'x-api-key': undefined }), 401);
    expectError(await get(`/api/inventory/${id}`, { accept: `${JSONAPI}; charset=utf-8` }), 406);
    expect((await get(`/api/inventory/${id}`, { accept: 'application/json' })).statusCode).toBe(200);
  });
});
