import { beforeEach, describe, expect, it } from 'vitest';
import {
  createProduct,
  expectError,
  expectNoWrite,
  ISO_UTC,
  itAnsweredNoServerError,
  JSONAPI,
  type ProductResource,
  send,
  tableState,
  updateBody,
  useProductsApp,
} from './helpers.js';

const ctx = useProductsApp();
const patch = (id: string, body: unknown) => send(ctx.app(), 'PATCH', `/api/products/${id}`, { body });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const NOMBRE = { pointer: '/data/attributes/nombre' };
const PRECIO = { pointer: '/data/attributes/precio' };
const DESCRIPCION = { pointer: '/data/attributes/descripcion' };

describe('PATCH /api/products/{id} — success', () => {
  let product: ProductResource;
  beforeEach(async () => {
    product = await createProduct(ctx.app(), { nombre: 'Silla', precio: 30, descripcion: 'Madera' });
  });

  it('changes only the given attribute and answers 200 with the resource', async () => {
    await sleep(5);
    const res = await patch(product.id, updateBody(product.id, { precio: 35.5 }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const body = res.json();
    expect(body).toEqual({
      data: {
        type: 'products',
        id: product.id,
        attributes: {
          nombre: 'Silla',
          precio: 35.5,
          descripcion: 'Madera',
          created_at: product.attributes.created_at,
          updated_at: expect.stringMatching(ISO_UTC),
        },
        links: { self: `/api/products/${product.id}` },
      },
      links: { self: `/api/products/${product.id}` },
    });
    expect(Date.parse(body.data.attributes.updated_at)).toBeGreaterThan(
      Date.parse(product.attributes.updated_at),
    );

    const read = await send(ctx.app(), 'GET', `/api/products/${product.id}`);
    expect(read.json().data).toEqual(body.data);
  });

  it.each([
    ['nombre', { nombre: 'Mesa' }, { nombre: 'Mesa' }],
    ['nombre, trimmed', { nombre: '  Mesa baja  ' }, { nombre: 'Mesa baja' }],
    [
      'nombre of 255 characters padded by spaces',
      { nombre: ` ${'m'.repeat(255)} ` },
      { nombre: 'm'.repeat(255) },
    ],
    ['descripcion', { descripcion: 'Pino' }, { descripcion: 'Pino' }],
    ['descripcion to null', { descripcion: null }, { descripcion: null }],
    ['precio 0.1', { precio: 0.1 }, { precio: 0.1 }],
    ['precio 99999999.99', { precio: 99999999.99 }, { precio: 99999999.99 }],
    [
      'all three',
      { nombre: 'Banco', precio: 12.34, descripcion: '' },
      { nombre: 'Banco', precio: 12.34, descripcion: '' },
    ],
  ])('updates %s and leaves the rest as it was', async (_label, attributes, changed) => {
    const res = await patch(product.id, updateBody(product.id, attributes));
    expect(res.statusCode, res.body).toBe(200);
    const { created_at, updated_at: _u, ...rest } = product.attributes;
    expect(res.json().data.attributes).toEqual({
      ...rest,
      ...changed,
      created_at,
      updated_at: expect.stringMatching(ISO_UTC),
    });
  });

  it('updated_at strictly advances on every update, even back to back; created_at never moves', async () => {
    let previous = product.attributes.updated_at;
    for (let i = 0; i < 5; i++) {
      const res = await patch(product.id, updateBody(product.id, { precio: 30 + i }));
      const { updated_at, created_at } = res.json().data.attributes;
      expect(Date.parse(updated_at)).toBeGreaterThan(Date.parse(previous));
      expect(created_at).toBe(product.attributes.created_at);
      previous = updated_at;
    }
    const { rows } = await ctx
      .db()
      .pool.query(
        'SELECT created_at::text AS c, updated_at > created_at AS advanced FROM productos WHERE id = $1',
        [Number(product.id)],
      );
    expect(rows[0].advanced).toBe(true);
  });

  it('updated_at advances past a stored value from a clock running ahead (another instance)', async () => {
    const { rows } = await ctx
      .db()
      .pool.query(
        "UPDATE productos SET updated_at = updated_at + interval '1 hour' WHERE id = $1 RETURNING updated_at::text AS t",
        [Number(product.id)],
      );
    const ahead = Date.parse(`${rows[0].t.replace(' ', 'T')}Z`);
    const res = await patch(product.id, updateBody(product.id, { nombre: 'Adelantada' }));
    expect(Date.parse(res.json().data.attributes.updated_at)).toBeGreaterThan(ahead);
  });

  it('an empty attributes object changes nothing but updated_at', async () => {
    const res = await patch(product.id, updateBody(product.id, {}));
    expect(res.statusCode).toBe(200);
    const { updated_at, ...attributes } = res.json().data.attributes;
    const { updated_at: before, ...original } = product.attributes;
    expect(attributes).toEqual(original);
    expect(Date.parse(updated_at)).toBeGreaterThan(Date.parse(before));
  });

  it('accepts the JSON:API media type with an ext parameter', async () => {
    const res = await send(ctx.app(), 'PATCH', `/api/products/${product.id}`, {
      body: updateBody(product.id, { nombre: 'Con ext' }),
      headers: { 'content-type': 'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"' },
    });
    expect(res.statusCode).toBe(200);
  });

  it('touches no other row', async () => {
    const other = await createProduct(ctx.app(), { nombre: 'Otra', precio: 2 });
    const before = (await tableState(ctx.db())).find((r) => r.id === Number(other.id));
    await patch(product.id, updateBody(product.id, { nombre: 'Cambiada', precio: 3, descripcion: null }));
    const after = (await tableState(ctx.db())).find((r) => r.id === Number(other.id));
    expect(after).toEqual(before);
  });
});

describe('PATCH /api/products/{id} — refused, writing nothing', () => {
  let product: ProductResource;
  beforeEach(async () => {
    product = await createProduct(ctx.app(), { nombre: 'Armario', precio: 150 });
  });

  const refused = (body: unknown, status: number, source?: Parameters<typeof expectError>[2], id?: string) =>
    expectNoWrite(ctx.db(), async () => expectError(await patch(id ?? product.id, body), status, source));

  it.each([
    ['nombre empty', { nombre: '' }, NOMBRE],
    ['nombre blank', { nombre: '   ' }, NOMBRE],
    ['nombre 256 characters', { nombre: 'x'.repeat(256) }, NOMBRE],
    ['nombre null', { nombre: null }, NOMBRE],
    ['nombre a number', { nombre: 1 }, NOMBRE],
    ['nombre with NUL', { nombre: '\u0000' }, NOMBRE],
    ['precio 0', { precio: 0 }, PRECIO],
    ['precio negative', { precio: -0.01 }, PRECIO],
    ['precio 3 decimals', { precio: 10.001 }, PRECIO],
    ['precio above the maximum', { precio: 100_000_000 }, PRECIO],
    ['precio a string', { precio: '10' }, PRECIO],
    ['precio null', { precio: null }, PRECIO],
    ['precio 1.000000000001', { precio: 1.000000000001 }, PRECIO],
    ['precio 5e-324', { precio: 5e-324 }, PRECIO],
    ['descripcion 5001 characters', { descripcion: 'x'.repeat(5001) }, DESCRIPCION],
    ['descripcion a boolean', { descripcion: false }, DESCRIPCION],
    ['descripcion with NUL', { descripcion: 'a\u0000' }, DESCRIPCION],
    ['an unknown attribute', { peso: 3 }, { pointer: '/data/attributes/peso' }],
    ['created_at', { created_at: '2020-01-01T00:00:00.000Z' }, { pointer: '/data/attributes/created_at' }],
    ['updated_at', { updated_at: '2020-01-01T00:00:00.000Z' }, { pointer: '/data/attributes/updated_at' }],
  ])('%s is 400', async (_label, attributes, source) => {
    await refused(updateBody(product.id, attributes), 400, source);
  });

  it('a valid change next to an invalid one is not applied either', async () => {
    await refused(updateBody(product.id, { nombre: 'Nuevo', precio: -1 }), 400, PRECIO);
  });

  it.each([
    ['truncated JSON', '{"data":{'],
    ['an empty body', ''],
    ['a body without data', { meta: {} }],
    ['data that is a string', { data: 'x' }],
    ['data that is an array', { data: [] }],
    ['data without attributes', { data: { type: 'products', id: 'ID' } }],
  ])('%s is 400', async (_label, body) => {
    const resolved =
      typeof body === 'string' ? body : JSON.parse(JSON.stringify(body).replace('"ID"', `"${product.id}"`));
    await refused(resolved, 400);
  });

  it('data without id is 400 at /data/id', async () => {
    await refused({ data: { type: 'products', attributes: { nombre: 'x' } } }, 400, { pointer: '/data/id' });
  });

  it('an id that is a number, not a string, is 400 at /data/id', async () => {
    await refused({ data: { type: 'products', id: Number(product.id), attributes: {} } }, 400, {
      pointer: '/data/id',
    });
  });

  it.each(['inventories', 'product', ''])('type %j is 409', async (type) => {
    await refused({ data: { type, id: product.id, attributes: { nombre: 'x' } } }, 409, {
      pointer: '/data/type',
    });
  });

  it('a data.id other than the path id is 409', async () => {
    const other = await createProduct(ctx.app(), { nombre: 'Otro', precio: 1 });
    await refused(updateBody(other.id, { nombre: 'x' }), 409, { pointer: '/data/id' });
    const { rows } = await ctx
      .db()
      .pool.query('SELECT nombre FROM productos WHERE id = ANY($1::int[])', [
        [Number(product.id), Number(other.id)],
      ]);
    expect(rows.map((r) => r.nombre).sort()).toEqual(['Armario', 'Otro']);
  });

  it('a body over 1 MiB is 413', async () => {
    const body = JSON.stringify(updateBody(product.id, { descripcion: 'x'.repeat(1024 * 1024) }));
    await refused(body, 413);
  });

  it('a missing product is 404 "Producto no encontrado"', async () => {
    const [error] = await refused(updateBody('2147483647', { nombre: 'x' }), 404, undefined, '2147483647');
    expect(error?.detail).toBe('Producto no encontrado');
  });

  it.each(['0', '-1', 'abc', '1.5', '01', '2147483648'])(
    'path id %j is 400 with source.parameter, whatever the body',
    async (id) => {
      await refused(updateBody(id, { nombre: 'x' }), 400, { parameter: 'id' }, id);
    },
  );
});

describe('DELETE /api/products/{id}', () => {
  it('answers 204 with no body and no JSON:API Content-Type, then the product is gone', async () => {
    const product = await createProduct(ctx.app(), { nombre: 'Efímero', precio: 1 });
    const res = await send(ctx.app(), 'DELETE', `/api/products/${product.id}`);
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(res.headers['content-length'] ?? '0').toBe('0');

    expectError(await send(ctx.app(), 'GET', `/api/products/${product.id}`), 404);
    const again = expectError(await send(ctx.app(), 'DELETE', `/api/products/${product.id}`), 404);
    expect(again[0]?.detail).toBe('Producto no encontrado');
    expectError(await patch(product.id, updateBody(product.id, { nombre: 'x' })), 404);
    const { rows } = await ctx.db().pool.query('SELECT 1 FROM productos WHERE id = $1', [Number(product.id)]);
    expect(rows).toEqual([]);
  });

  it('deletes only the given product', async () => {
    const keep = await createProduct(ctx.app(), { nombre: 'Se queda', precio: 1 });
    const drop = await createProduct(ctx.app(), { nombre: 'Se va', precio: 1 });
    const before = await tableState(ctx.db());
    expect((await send(ctx.app(), 'DELETE', `/api/products/${drop.id}`)).statusCode).toBe(204);
    expect(await tableState(ctx.db())).toEqual(before.filter((r) => r.id !== Number(drop.id)));
    expect((await send(ctx.app(), 'GET', `/api/products/${keep.id}`)).statusCode).toBe(200);
  });

  it('a missing product is 404 and deletes nothing', async () => {
    await createProduct(ctx.app());
    await expectNoWrite(ctx.db(), async () =>
      expectError(await send(ctx.app(), 'DELETE', '/api/products/2147483647'), 404),
    );
  });

  it.each(['0', '-1', 'abc', '1.5', '2147483648'])('path id %j is 400 with source.parameter', async (id) => {
    await createProduct(ctx.app());
    await expectNoWrite(ctx.db(), async () =>
      expectError(await send(ctx.app(), 'DELETE', `/api/products/${id}`), 400, { parameter: 'id' }),
    );
  });

  it('without a key is 401 and deletes nothing', async () => {
    const product = await createProduct(ctx.app());
    await expectNoWrite(ctx.db(), async () =>
      expectError(
        await send(ctx.app(), 'DELETE', `/api/products/${product.id}`, {
          headers: { 'x-api-key': undefined },
        }),
        401,
      ),
    );
  });
});

itAnsweredNoServerError(ctx);
