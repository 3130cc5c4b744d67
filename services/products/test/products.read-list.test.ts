import { beforeAll, describe, expect, it } from 'vitest';
import {
  createProduct,
  expectError,
  ISO_UTC,
  itAnsweredNoServerError,
  JSONAPI,
  type ProductResource,
  send,
  useProductsApp,
} from './helpers.js';

const ctx = useProductsApp();
const get = (url: string) => send(ctx.app(), 'GET', url);

interface Collection {
  data: ProductResource[];
  meta: { total: number };
  links: { self: string; first: string; last: string; prev: string | null; next: string | null };
}

async function list(query: string): Promise<Collection> {
  const res = await get(`/api/products${query}`);
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe(JSONAPI);
  return res.json() as Collection;
}

/** Follows links.next from the first page to the end, returning every resource seen in order. */
async function walk(query: string): Promise<{ seen: ProductResource[]; pages: number; total: number }> {
  let page = await list(query);
  const seen = [...page.data];
  let pages = 1;
  while (page.links.next !== null) {
    expect(pages).toBeLessThan(100);
    const res = await get(page.links.next);
    expect(res.statusCode, res.body).toBe(200);
    page = res.json() as Collection;
    seen.push(...page.data);
    pages++;
  }
  return { seen, pages, total: page.meta.total };
}

const ids = (resources: ProductResource[]) => resources.map((r) => Number(r.id));

describe('GET /api/products/{id}', () => {
  let product: ProductResource;
  beforeAll(async () => {
    product = await createProduct(ctx.app(), { nombre: 'Lámpara', precio: 45.5, descripcion: 'De mesa' });
  });

  it('answers 200 with the resource and links.self', async () => {
    const res = await get(`/api/products/${product.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    expect(res.json()).toEqual({
      data: {
        type: 'products',
        id: product.id,
        attributes: {
          nombre: 'Lámpara',
          precio: 45.5,
          descripcion: 'De mesa',
          created_at: product.attributes.created_at,
          updated_at: product.attributes.updated_at,
        },
        links: { self: `/api/products/${product.id}` },
      },
      links: { self: `/api/products/${product.id}` },
    });
    expect(res.json().data.attributes.created_at).toMatch(ISO_UTC);
  });

  it('reads what another key wrote (keys share one catalogue)', async () => {
    const res = await send(ctx.app(), 'GET', `/api/products/${product.id}`, {
      headers: { 'x-api-key': 'second-key' },
    });
    expect(res.statusCode).toBe(200);
  });

  it.each(['999999', '2147483647'])('a missing id (%s) is 404 "Producto no encontrado"', async (id) => {
    const [error] = expectError(await get(`/api/products/${id}`), 404);
    expect(error?.detail).toBe('Producto no encontrado');
  });

  it.each([
    '0',
    '-1',
    'abc',
    '1.5',
    '01',
    '1e3',
    '+1',
    '%201',
    '0x1',
    '2147483648',
    '99999999999999999999',
    '%00',
  ])('path id %j is 400 with source.parameter', async (id) => {
    expectError(await get(`/api/products/${id}`), 400, { parameter: 'id' });
  });

  it('a path id that cannot be decoded is 400 in JSON:API', async () => {
    expectError(await get('/api/products/%ff'), 400);
  });

  it('a path id longer than the router accepts is 400 in JSON:API, not 414', async () => {
    expectError(await get(`/api/products/${'1'.repeat(9000)}`), 400);
  });
});

describe('GET /api/products — collection', () => {
  const TAG = 'colección';
  let fixtures: ProductResource[];
  beforeAll(async () => {
    const specs: [string, number][] = [
      ['Manzana roja', 2.5],
      ['manzana verde', 2.5],
      ['MANZANA asada', 7],
      ['Pera', 1.2],
      ['Uva 100%', 3],
      ['Uva 100 g', 3],
      ['snake_case', 3],
      ['snakeXcase', 0.5],
      ['barra\\invertida', 9.99],
      ['barraXinvertida', 9.99],
      ['Kiwi', 2.5],
    ];
    fixtures = [];
    for (const [nombre, precio] of specs) {
      fixtures.push(await createProduct(ctx.app(), { nombre: `${nombre} ${TAG}`, precio }));
    }
    // An update writes a new row version at the end of the table, so rows with equal sort keys no
    // longer come back in id order by accident: only an explicit tie-breaker keeps them there.
    for (const index of [0, 4, 8]) {
      await ctx
        .db()
        .pool.query('UPDATE productos SET descripcion = NULL WHERE id = $1', [Number(fixtures[index]!.id)]);
    }
  });

  it('lists by id by default, with meta.total equal to the table size', async () => {
    const { rows } = await ctx.db().pool.query('SELECT count(*)::int AS n FROM productos');
    const page = await list('?page[size]=100');
    expect(page.meta.total).toBe(rows[0].n);
    const seen = ids(page.data);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen).toEqual(expect.arrayContaining(ids(fixtures)));
  });

  it('uses 20 as the default page size', async () => {
    for (let i = 0; i < 12; i++) await createProduct(ctx.app(), { nombre: `Relleno ${i}`, precio: 1 });
    const page = await list('');
    expect(page.meta.total).toBeGreaterThan(20);
    expect(page.data).toHaveLength(20);
    expect(page.links.self).toContain('page[size]=20');
  });

  it('each resource in a collection has the resource shape and links.self', async () => {
    const page = await list(`?filter[nombre]=${encodeURIComponent(TAG)}`);
    for (const resource of page.data) {
      expect(resource).toEqual({
        type: 'products',
        id: expect.stringMatching(/^[1-9][0-9]*$/),
        attributes: {
          nombre: expect.any(String),
          precio: expect.any(Number),
          descripcion: null,
          created_at: expect.stringMatching(ISO_UTC),
          updated_at: expect.stringMatching(ISO_UTC),
        },
        links: { self: `/api/products/${resource.id}` },
      });
    }
  });

  it('sorts by -precio, breaking ties by id', async () => {
    const page = await list(`?filter[nombre]=${encodeURIComponent(TAG)}&sort=-precio&page[size]=100`);
    const expected = [...fixtures].sort(
      (a, b) => b.attributes.precio - a.attributes.precio || Number(a.id) - Number(b.id),
    );
    expect(ids(page.data)).toEqual(ids(expected));
  });

  it('sorts by nombre,id (and -nombre,-id)', async () => {
    const names = ['zorden b', 'zorden a', 'zorden c', 'zorden a', 'zorden b'];
    const made: ProductResource[] = [];
    for (const nombre of names) made.push(await createProduct(ctx.app(), { nombre, precio: 1 }));
    const expected = [...made].sort(
      (a, b) =>
        (a.attributes.nombre < b.attributes.nombre
          ? -1
          : a.attributes.nombre > b.attributes.nombre
            ? 1
            : 0) || Number(a.id) - Number(b.id),
    );
    const asc = await list('?filter[nombre]=zorden&sort=nombre,id');
    expect(ids(asc.data)).toEqual(ids(expected));
    const desc = await list('?filter[nombre]=zorden&sort=-nombre,-id');
    expect(ids(desc.data)).toEqual(ids(expected).reverse());
  });

  it('sorts by -id and by created_at', async () => {
    const desc = await list(`?filter[nombre]=${encodeURIComponent(TAG)}&sort=-id&page[size]=100`);
    expect(ids(desc.data)).toEqual(ids(fixtures).reverse());
    const created = await list(`?filter[nombre]=${encodeURIComponent(TAG)}&sort=created_at&page[size]=100`);
    const times = created.data.map((r) => Date.parse(r.attributes.created_at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('filter[nombre] is a case-insensitive substring match', async () => {
    const page = await list('?filter[nombre]=mAnZaNa&page[size]=100');
    expect(page.data.map((r) => r.attributes.nombre).sort()).toEqual(
      ['MANZANA asada', 'Manzana roja', 'manzana verde'].map((n) => `${n} ${TAG}`).sort(),
    );
    expect(page.meta.total).toBe(3);
  });

  it('filter[nombre] takes % literally', async () => {
    const page = await list('?filter[nombre]=100%25');
    expect(page.data.map((r) => r.attributes.nombre)).toEqual([`Uva 100% ${TAG}`]);
    expect(page.meta.total).toBe(1);
  });

  it('filter[nombre] takes _ literally', async () => {
    const page = await list('?filter[nombre]=e_c');
    expect(page.data.map((r) => r.attributes.nombre)).toEqual([`snake_case ${TAG}`]);
  });

  it('filter[nombre] takes a backslash literally', async () => {
    const page = await list('?filter[nombre]=a%5Ci');
    expect(page.data.map((r) => r.attributes.nombre)).toEqual([`barra\\invertida ${TAG}`]);
  });

  it('filter[nombre] with no match is an empty collection with total 0', async () => {
    const page = await list('?filter[nombre]=no-existe-nada');
    expect(page).toMatchObject({ data: [], meta: { total: 0 }, links: { prev: null, next: null } });
    expect(page.links.last).toBe(page.links.first);
  });

  it('filter[id]=a,b,c returns exactly those products', async () => {
    const wanted = [fixtures[4]!, fixtures[0]!, fixtures[7]!];
    const page = await list(`?filter[id]=${wanted.map((r) => r.id).join(',')}`);
    expect(ids(page.data)).toEqual(ids(wanted).sort((a, b) => a - b));
    expect(page.meta.total).toBe(3);
  });

  it('filter[id] ignores ids that do not exist and repeated ids', async () => {
    const page = await list(`?filter[id]=${fixtures[1]!.id},2147483647,${fixtures[1]!.id}`);
    expect(ids(page.data)).toEqual([Number(fixtures[1]!.id)]);
    expect(page.meta.total).toBe(1);
  });

  it('filter[id] accepts 100 ids', async () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1).join(',');
    const page = await list(`?filter[id]=${hundred}&page[size]=100`);
    expect(page.data.every((r) => Number(r.id) <= 100)).toBe(true);
  });

  it('filter[id] and filter[nombre] combine', async () => {
    const page = await list(`?filter[id]=${fixtures[0]!.id},${fixtures[3]!.id}&filter[nombre]=manzana`);
    expect(ids(page.data)).toEqual([Number(fixtures[0]!.id)]);
  });

  describe('pagination links', () => {
    const query = `?filter[nombre]=${encodeURIComponent(TAG)}&sort=-precio&page[size]=4`;

    it('page 1 has prev null and next to page 2; links keep the filter, sort and size', async () => {
      const page = await list(query);
      expect(page.data).toHaveLength(4);
      expect(page.meta.total).toBe(fixtures.length);
      const { self, first, last, prev, next } = page.links;
      for (const link of [self, first, last, next as string]) {
        expect(link.startsWith('/api/products?')).toBe(true);
        expect(link).toContain('sort=-precio');
        expect(link).toContain('page[size]=4');
        expect(decodeURIComponent(link)).toContain(`filter[nombre]=${TAG}`);
      }
      expect(self).toContain('page[number]=1');
      expect(first).toContain('page[number]=1');
      expect(last).toContain(`page[number]=${Math.ceil(fixtures.length / 4)}`);
      expect(prev).toBeNull();
      expect(next).toContain('page[number]=2');
    });

    it('the last page has next null and prev to the page before it', async () => {
      const lastNumber = Math.ceil(fixtures.length / 4);
      const page = await list(`${query}&page[number]=${lastNumber}`);
      expect(page.data).toHaveLength(fixtures.length - 4 * (lastNumber - 1));
      expect(page.links.next).toBeNull();
      expect(page.links.prev).toContain(`page[number]=${lastNumber - 1}`);
      expect(page.links.self).toBe(page.links.last);
    });

    it('links.self of a page reproduces that page', async () => {
      const page = await list(`${query}&page[number]=2`);
      const again = await get(page.links.self);
      expect(again.json()).toEqual(page);
    });

    it('a page beyond the last is empty, keeps meta.total and has no next', async () => {
      const page = await list(`${query}&page[number]=50`);
      expect(page.data).toEqual([]);
      expect(page.meta.total).toBe(fixtures.length);
      expect(page.links.next).toBeNull();
    });

    it.each([
      [
        'sorted by -precio (with ties)',
        `?filter[nombre]=${encodeURIComponent(TAG)}&sort=-precio&page[size]=3`,
      ],
      ['sorted by nombre', `?filter[nombre]=${encodeURIComponent(TAG)}&sort=nombre&page[size]=2`],
      ['filtered by id', `?filter[id]=${'IDS'}&page[size]=2`],
      ['with page size 1', `?filter[nombre]=${encodeURIComponent(TAG)}&page[size]=1`],
    ])('following links.next from page 1 visits every match exactly once, %s', async (_label, template) => {
      const query = template.replace('IDS', fixtures.map((r) => r.id).join(','));
      const { seen, total } = await walk(query);
      expect(total).toBe(fixtures.length);
      expect(ids(seen)).toHaveLength(fixtures.length);
      expect(new Set(ids(seen))).toEqual(new Set(ids(fixtures)));
    });

    it('following links.next over the whole table visits every product exactly once', async () => {
      const { rows } = await ctx.db().pool.query<{ id: number }>('SELECT id FROM productos ORDER BY id');
      const { seen, total } = await walk('?page[size]=7&sort=precio');
      expect(total).toBe(rows.length);
      expect(ids(seen).sort((a, b) => a - b)).toEqual(rows.map((r) => r.id));
    });
  });
});

describe('GET /api/products — invalid parameters are 400 with source.parameter', () => {
  it.each([
    ['page[number]=0', 'page[number]'],
    ['page[number]=abc', 'page[number]'],
    ['page[number]=-1', 'page[number]'],
    ['page[number]=1.5', 'page[number]'],
    ['page[number]=', 'page[number]'],
    ['page[size]=0', 'page[size]'],
    ['page[size]=101', 'page[size]'],
    ['page[size]=abc', 'page[size]'],
    ['page[size]=-5', 'page[size]'],
    ['page[size]=10&page[size]=20', 'page[size]'],
    ['sort=descripcion', 'sort'],
    ['sort=updated_at', 'sort'],
    ['sort=nombre,color', 'sort'],
    ['sort=', 'sort'],
    ['sort=--id', 'sort'],
    ['sort=+id', 'sort'],
    ['filter[id]=1,abc', 'filter[id]'],
    ['filter[id]=0', 'filter[id]'],
    ['filter[id]=-3', 'filter[id]'],
    ['filter[id]=2147483648', 'filter[id]'],
    ['filter[id]=', 'filter[id]'],
    ['filter[id]=1,,2', 'filter[id]'],
    [`filter[id]=${Array.from({ length: 101 }, (_, i) => i + 1).join(',')}`, 'filter[id]'],
    [`filter[nombre]=${'x'.repeat(256)}`, 'filter[nombre]'],
    ['filter[nombre]=%00', 'filter[nombre]'],
    ['color=rojo', 'color'],
    ['filter[precio]=3', 'filter[precio]'],
    ['page[offset]=3', 'page[offset]'],
    ['include=inventory', 'include'],
  ])('%s', async (query, parameter) => {
    expectError(await get(`/api/products?${query}`), 400, { parameter });
  });
});

itAnsweredNoServerError(ctx);
