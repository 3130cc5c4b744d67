import { beforeAll, describe, expect, it } from 'vitest';
import { expectError, ISO_UTC, JSONAPI, MAX_INT, purchaseBody, send, useInventoryApp } from './helpers.js';

const ctx = useInventoryApp();
const get = (url: string, headers?: Record<string, string | undefined>) =>
  send(ctx.app(), 'GET', url, headers ? { headers } : {});

async function buy(productoId: number, cantidad = 1): Promise<string> {
  const res = await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(productoId, cantidad) });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data.id;
}

interface Page {
  data: { id: string; attributes: { producto_id: number } }[];
  links: { self: string; first: string; prev: null; next: string | null };
}

let a: number;
let b: number;
/** Purchases of products a and b, interleaved, in the order they were made. */
const made: { id: string; productoId: number }[] = [];

beforeAll(async () => {
  a = await ctx.createProduct(1.25, 'A');
  b = await ctx.createProduct(4, 'B');
  await ctx.setStock(a, 100);
  await ctx.setStock(b, 100);
  for (let i = 0; i < 12; i++) {
    const productoId = i % 3 === 0 ? b : a;
    made.push({ id: await buy(productoId, 1 + (i % 2)), productoId });
  }
});

describe('GET /api/purchases/{id}', () => {
  it('answers 200 with the purchase, its relationship and links.self', async () => {
    const first = made[1]!;
    const res = await get(`/api/purchases/${first.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    expect(res.json()).toEqual({
      data: {
        type: 'purchases',
        id: first.id,
        attributes: {
          producto_id: a,
          cantidad: 2,
          precio_unitario: 1.25,
          total: 2.5,
          created_at: expect.stringMatching(ISO_UTC),
          estado: 'completada',
          cancelada_at: null,
        },
        relationships: {
          product: { data: { type: 'products', id: String(a) } },
          order: { data: null },
        },
        links: { self: `/api/purchases/${first.id}` },
      },
      links: { self: `/api/purchases/${first.id}` },
    });
  });

  it('answers the same resource POST returned', async () => {
    const created = await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(b, 3) });
    const read = await get(created.headers.location as string);
    expect(read.json().data).toEqual(created.json().data);
  });

  it('answers 404 for a purchase that does not exist', async () => {
    const errors = expectError(await get(`/api/purchases/${MAX_INT}`), 404);
    expect(errors[0]!.detail).toBe('Compra no encontrada');
  });

  it.each(['0', '-1', 'abc', '2147483648', '1.0'])(
    'answers 400 source.parameter for the id %s',
    async (id) => {
      expectError(await get(`/api/purchases/${id}`), 400, { parameter: 'id' });
    },
  );

  it('answers 401 without a key', async () => {
    expectError(await get(`/api/purchases/${made[0]!.id}`, { 'x-api-key': undefined }), 401);
  });
});

describe('GET /api/purchases', () => {
  it('lists newest first, with links and the JSON:API media type', async () => {
    const res = await get('/api/purchases');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const body = res.json() as Page;
    const ids = body.data.map((p) => Number(p.id));
    expect(ids).toEqual([...ids].sort((x, y) => y - x));
    expect(body.links).toMatchObject({ self: '/api/purchases?page[size]=20', prev: null });
    expect(ids[0]).toBeGreaterThanOrEqual(Number(made.at(-1)!.id));
  });

  it('filters by filter[producto_id]', async () => {
    const res = await get(`/api/purchases?filter[producto_id]=${b}&page[size]=100`);
    const page = res.json() as Page;
    expect(page.data.every((p) => p.attributes.producto_id === b)).toBe(true);
    const expected = made.filter((m) => m.productoId === b).map((m) => m.id);
    expect(page.data.map((p) => p.id)).toEqual(expect.arrayContaining(expected));
    expect(page.links.self).toBe(`/api/purchases?filter[producto_id]=${b}&page[size]=100`);
  });

  it('answers an empty page for a product without purchases', async () => {
    const res = await get('/api/purchases?filter[producto_id]=1999999999');
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toEqual([]);
    expect(res.json().links.next).toBeNull();
  });

  it('follows links.next over every purchase exactly once, keeping the filter', async () => {
    const pages: Page[] = [];
    for (let next: string | null = `/api/purchases?filter[producto_id]=${a}&page[size]=3`; next; ) {
      const res = await get(next);
      expect(res.statusCode, res.body).toBe(200);
      pages.push(res.json());
      next = pages.at(-1)!.links.next;
      if (next) expect(next).toContain(`filter[producto_id]=${a}`);
    }
    const seen = pages.flatMap((p) => p.data.map((d) => d.id));
    const expected = made.filter((m) => m.productoId === a).map((m) => m.id);
    expect(seen).toEqual([...expected].reverse());
    for (const page of pages) expect(page.data.length).toBeLessThanOrEqual(3);
  });

  it('keeps its cursor stable while new purchases arrive between pages', async () => {
    const first = (await get(`/api/purchases?filter[producto_id]=${a}&page[size]=4`)).json() as Page;
    // With OFFSET paging, a purchase made now would shift an already-seen purchase onto page 2.
    await buy(a);
    await buy(a);
    const seen = first.data.map((d) => d.id);
    for (let next = first.links.next; next; ) {
      const page = (await get(next)).json() as Page;
      seen.push(...page.data.map((d) => d.id));
      next = page.links.next;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(
      made
        .filter((m) => m.productoId === a)
        .map((m) => m.id)
        .reverse(),
    );
  });

  it('visits the whole unfiltered history once with page[size]=1', async () => {
    const { rows } = await ctx
      .db()
      .pool.query<{ id: number }>('SELECT id FROM historial_compras ORDER BY id DESC');
    const seen: number[] = [];
    for (let next: string | null = '/api/purchases?page[size]=1'; next; ) {
      const page = (await get(next)).json() as Page;
      seen.push(...page.data.map((d) => Number(d.id)));
      next = page.links.next;
      expect(seen.length).toBeLessThanOrEqual(rows.length);
    }
    expect(seen).toEqual(rows.map((r) => r.id));
  });

  it('uses 20 per page by default and accepts page[size] 100', async () => {
    await Promise.all(Array.from({ length: 10 }, () => buy(b)));
    expect((await get('/api/purchases')).json().data).toHaveLength(20);
    expect((await get('/api/purchases?page[size]=100')).statusCode).toBe(200);
  });

  it.each([
    ['filter[producto_id]', 'abc'],
    ['filter[producto_id]', '0'],
    ['filter[producto_id]', '-1'],
    ['filter[producto_id]', '2147483648'],
    ['filter[producto_id]', '1,2'],
    ['page[size]', '0'],
    ['page[size]', '101'],
    ['page[size]', 'x'],
    ['page[after]', '0'],
    ['page[after]', 'abc'],
  ])('answers 400 naming %s for %s', async (parameter, value) => {
    expectError(await get(`/api/purchases?${parameter}=${value}`), 400, { parameter });
  });

  it('answers 400 for an unknown parameter', async () => {
    expectError(await get('/api/purchases?filter[cantidad]=1'), 400, { parameter: 'filter[cantidad]' });
    expectError(await get('/api/purchases?sort=-id'), 400, { parameter: 'sort' });
  });

  it('answers 401 without a key', async () => {
    expectError(await get('/api/purchases', { 'x-api-key': 'bad' }), 401);
  });
});
