import { describe, expect, it } from 'vitest';
import {
  expectError,
  expectNoWrite,
  ISO_UTC,
  itAnsweredNoServerError,
  JSONAPI,
  productBody,
  send,
  useProductsApp,
} from './helpers.js';

const ctx = useProductsApp();
const post = (body: unknown, headers?: Record<string, string | undefined>) =>
  send(ctx.app(), 'POST', '/api/products', { body, ...(headers ? { headers } : {}) });

/** Posts a body that must be refused with `status`, and asserts that nothing was written. */
const refused = (body: unknown, status: number, source?: Parameters<typeof expectError>[2]) =>
  expectNoWrite(ctx.db(), async () => expectError(await post(body), status, source));

const NOMBRE = { pointer: '/data/attributes/nombre' };
const PRECIO = { pointer: '/data/attributes/precio' };
const DESCRIPCION = { pointer: '/data/attributes/descripcion' };

describe('POST /api/products — success', () => {
  it('answers 201 with Location, the stored resource and links.self', async () => {
    const res = await post(
      productBody({ nombre: 'Café molido', precio: 19.99, descripcion: 'Tostado medio' }),
    );
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const body = res.json();
    const id = body.data.id;
    expect(id).toMatch(/^[1-9][0-9]*$/);
    expect(res.headers.location).toBe(`/api/products/${id}`);
    expect(body).toEqual({
      data: {
        type: 'products',
        id,
        attributes: {
          nombre: 'Café molido',
          precio: 19.99,
          descripcion: 'Tostado medio',
          created_at: expect.stringMatching(ISO_UTC),
          updated_at: expect.stringMatching(ISO_UTC),
        },
        links: { self: `/api/products/${id}` },
      },
      links: { self: `/api/products/${id}` },
    });
    expect(body.data.attributes.updated_at).toBe(body.data.attributes.created_at);

    const { rows } = await ctx
      .db()
      .pool.query('SELECT nombre, precio::text AS precio FROM productos WHERE id = $1', [Number(id)]);
    expect(rows).toEqual([{ nombre: 'Café molido', precio: '19.99' }]);
  });

  it('stores created_at as the current UTC time', async () => {
    const before = Date.now();
    const res = await post(productBody({ nombre: 'Reloj', precio: 1 }));
    const createdAt = Date.parse(res.json().data.attributes.created_at);
    // The database clock and this process's clock are the same machine's; allow for rounding.
    expect(createdAt).toBeGreaterThanOrEqual(before - 1_000);
    expect(createdAt).toBeLessThanOrEqual(Date.now() + 1_000);
  });

  it('trims nombre before storing it', async () => {
    const res = await post(productBody({ nombre: '  \t Té verde \n ', precio: 3 }));
    expect(res.statusCode).toBe(201);
    expect(res.json().data.attributes.nombre).toBe('Té verde');
    const { rows } = await ctx
      .db()
      .pool.query('SELECT nombre FROM productos WHERE id = $1', [Number(res.json().data.id)]);
    expect(rows[0].nombre).toBe('Té verde');
  });

  it('judges nombre trimmed: 255 characters padded by spaces are taken, 256 are not, spaces alone are empty', async () => {
    const long = 'ñ'.repeat(255);
    const padded = await post(productBody({ nombre: `   ${long}\n`, precio: 3 }));
    expect(padded.statusCode, padded.body).toBe(201);
    expect(padded.json().data.attributes.nombre).toBe(long);
    expectError(await post(productBody({ nombre: ` ${long}x `, precio: 3 })), 400, NOMBRE);
    const [blank] = expectError(await post(productBody({ nombre: ' \t ', precio: 3 })), 400, NOMBRE);
    expect(blank!.detail).toBe('No puede estar vacío');
  });

  it.each([0.1, 0.01, 19.99, 1.1, 99999999.99, 12345678.9, 7])(
    'round-trips precio %s exactly',
    async (precio) => {
      const res = await post(productBody({ nombre: 'Precio', precio }));
      expect(res.statusCode).toBe(201);
      // The raw JSON text, not a parsed float, must carry the exact digits.
      expect(res.body).toContain(`"precio":${precio}`);
      expect(res.json().data.attributes.precio).toBe(precio);
      const read = await send(ctx.app(), 'GET', res.headers.location as string);
      expect(read.json().data.attributes.precio).toBe(precio);
      const { rows } = await ctx
        .db()
        .pool.query('SELECT precio::text AS precio FROM productos WHERE id = $1', [
          Number(res.json().data.id),
        ]);
      expect(rows[0].precio).toBe(precio.toFixed(2));
    },
  );

  it('accepts a precio written with a trailing zero (1.10)', async () => {
    const res = await post('{"data":{"type":"products","attributes":{"nombre":"Cero","precio":1.10}}}');
    expect(res.statusCode).toBe(201);
    expect(res.json().data.attributes.precio).toBe(1.1);
  });

  it('defaults descripcion to null and accepts an explicit null', async () => {
    const omitted = await post(productBody({ nombre: 'Sin descripción', precio: 1 }));
    expect(omitted.json().data.attributes.descripcion).toBeNull();
    const explicit = await post(productBody({ nombre: 'Nula', precio: 1, descripcion: null }));
    expect(explicit.statusCode).toBe(201);
    expect(explicit.json().data.attributes.descripcion).toBeNull();
  });

  it('accepts the longest nombre and descripcion, counted in characters, not bytes', async () => {
    const nombre = `${'ñ'.repeat(254)}😀`;
    const descripcion = '😀'.repeat(5000);
    const res = await post(productBody({ nombre, precio: 1, descripcion }));
    expect(res.statusCode).toBe(201);
    expect(res.json().data.attributes).toMatchObject({ nombre, descripcion });
  });

  it('assigns a new id to every product', async () => {
    const a = await post(productBody({ nombre: 'A', precio: 1 }));
    const b = await post(productBody({ nombre: 'A', precio: 1 }));
    expect(a.json().data.id).not.toBe(b.json().data.id);
  });
});

describe('POST /api/products — invalid attributes are 400 with a pointer, and write nothing', () => {
  it.each([
    ['nombre missing', { precio: 1 }, NOMBRE],
    ['nombre empty', { nombre: '', precio: 1 }, NOMBRE],
    ['nombre blank', { nombre: '   \t ', precio: 1 }, NOMBRE],
    ['nombre 256 characters', { nombre: 'x'.repeat(256), precio: 1 }, NOMBRE],
    ['nombre a number', { nombre: 42, precio: 1 }, NOMBRE],
    ['nombre null', { nombre: null, precio: 1 }, NOMBRE],
    ['nombre an array', { nombre: ['a'], precio: 1 }, NOMBRE],
    ['nombre with NUL', { nombre: 'a\u0000b', precio: 1 }, NOMBRE],
    ['precio missing', { nombre: 'a' }, PRECIO],
    ['precio 0', { nombre: 'a', precio: 0 }, PRECIO],
    ['precio negative', { nombre: 'a', precio: -5 }, PRECIO],
    ['precio 3 decimals', { nombre: 'a', precio: 1.234 }, PRECIO],
    ['precio 0.001', { nombre: 'a', precio: 0.001 }, PRECIO],
    ['precio 0.005', { nombre: 'a', precio: 0.005 }, PRECIO],
    ['precio above the maximum', { nombre: 'a', precio: 100_000_000 }, PRECIO],
    ['precio just above the maximum', { nombre: 'a', precio: 99_999_999.991 }, PRECIO],
    ['precio a string', { nombre: 'a', precio: '19.99' }, PRECIO],
    ['precio null', { nombre: 'a', precio: null }, PRECIO],
    ['precio a boolean', { nombre: 'a', precio: true }, PRECIO],
    ['precio 1e300', { nombre: 'a', precio: 1e300 }, PRECIO],
    // ajv's multipleOf tolerates remainders below 1e-9: these once passed, then were rounded or broke.
    ['precio 1.000000000001', { nombre: 'a', precio: 1.000000000001 }, PRECIO],
    ['precio 5e-324', { nombre: 'a', precio: 5e-324 }, PRECIO],
    ['precio 1e-12', { nombre: 'a', precio: 1e-12 }, PRECIO],
    ['descripcion 5001 characters', { nombre: 'a', precio: 1, descripcion: 'x'.repeat(5001) }, DESCRIPCION],
    ['descripcion a number', { nombre: 'a', precio: 1, descripcion: 5 }, DESCRIPCION],
    ['descripcion an object', { nombre: 'a', precio: 1, descripcion: {} }, DESCRIPCION],
    ['descripcion with NUL', { nombre: 'a', precio: 1, descripcion: 'x\u0000' }, DESCRIPCION],
  ])('%s', async (_label, attributes, source) => {
    await refused(productBody(attributes), 400, source);
  });

  it('refuses a precio too large for a double (1e400) as 400', async () => {
    await expectNoWrite(ctx.db(), async () => {
      const res = await post('{"data":{"type":"products","attributes":{"nombre":"a","precio":1e400}}}');
      expectError(res, 400, PRECIO);
    });
  });

  it('reports every invalid attribute at once, one error object each', async () => {
    const errors = await refused(productBody({ nombre: '', precio: -1, descripcion: 3 }), 400, [
      NOMBRE,
      PRECIO,
      DESCRIPCION,
    ]);
    expect(errors).toHaveLength(3);
  });

  it('refuses an unknown attribute, naming it', async () => {
    const [error] = await refused(productBody({ nombre: 'a', precio: 1, color: 'rojo' }), 400, {
      pointer: '/data/attributes/color',
    });
    expect(error?.detail).toContain('color');
  });

  it.each(['created_at', 'updated_at'])('refuses the read-only attribute %s', async (name) => {
    const [error] = await refused(
      productBody({ nombre: 'a', precio: 1, [name]: '2026-01-01T00:00:00.000Z' }),
      400,
      { pointer: `/data/attributes/${name}` },
    );
    expect(error?.detail).toMatch(/solo lectura/);
  });

  it('refuses the id as an attribute', async () => {
    await refused(productBody({ nombre: 'a', precio: 1, id: 5 }), 400, { pointer: '/data/attributes/id' });
  });
});

describe('POST /api/products — malformed documents are 400, and write nothing', () => {
  it.each([
    ['truncated JSON', '{"data":'],
    ['not JSON at all', 'nombre=a&precio=1'],
    ['JSON with a prototype key', '{"__proto__":{"x":1},"data":{"type":"products","attributes":{}}}'],
    ['an empty body', ''],
  ])('%s', async (_label, raw) => {
    await refused(raw, 400);
  });

  it('a body without data', async () => {
    await refused({ meta: {} }, 400, [{ pointer: '/data' }, { pointer: '/meta' }]);
  });

  it('an empty object', async () => {
    await refused({}, 400, { pointer: '/data' });
  });

  it.each([
    ['a string', 'products'],
    ['null', null],
    ['an array', [{ type: 'products', attributes: { nombre: 'a', precio: 1 } }]],
    ['a number', 1],
  ])('data that is %s', async (_label, data) => {
    await refused({ data }, 400, { pointer: '/data' });
  });

  it.each([
    ['an array', '[]'],
    ['null', 'null'],
    ['a string', '"data"'],
  ])('a document that is %s', async (_label, raw) => {
    await refused(raw, 400, { pointer: '' });
  });

  it('data without attributes', async () => {
    await refused({ data: { type: 'products' } }, 400, { pointer: '/data/attributes' });
  });

  it('attributes that are not an object', async () => {
    await refused({ data: { type: 'products', attributes: [] } }, 400, { pointer: '/data/attributes' });
  });

  it('data without type', async () => {
    await refused({ data: { attributes: { nombre: 'a', precio: 1 } } }, 400, { pointer: '/data/type' });
  });

  it('a type that is not a string', async () => {
    await refused({ data: { type: 7, attributes: { nombre: 'a', precio: 1 } } }, 400, {
      pointer: '/data/type',
    });
  });

  it('an unknown member in data or at the top level', async () => {
    await refused(
      { data: { type: 'products', attributes: { nombre: 'a', precio: 1 }, relationships: {} } },
      400,
      { pointer: '/data/relationships' },
    );
    await refused({ ...productBody({ nombre: 'a', precio: 1 }), included: [] }, 400, {
      pointer: '/included',
    });
  });
});

describe('POST /api/products — identity rules', () => {
  it('a client-supplied id is 403', async () => {
    await refused({ data: { type: 'products', id: '999', attributes: { nombre: 'a', precio: 1 } } }, 403, {
      pointer: '/data/id',
    });
  });

  it('a client-supplied id is 403 even when it is not a valid id', async () => {
    await refused({ data: { type: 'products', id: 'x', attributes: { nombre: 'a', precio: 1 } } }, 403, {
      pointer: '/data/id',
    });
  });

  it.each(['inventories', 'product', 'Products', ''])('type %j is 409', async (type) => {
    await refused({ data: { type, attributes: { nombre: 'a', precio: 1 } } }, 409, { pointer: '/data/type' });
  });
});

describe('POST /api/products — body size', () => {
  it('a body over 1 MiB is 413', async () => {
    const body = JSON.stringify(
      productBody({ nombre: 'a', precio: 1, descripcion: 'x'.repeat(1024 * 1024) }),
    );
    expect(Buffer.byteLength(body)).toBeGreaterThan(1024 * 1024);
    await expectNoWrite(ctx.db(), async () => expectError(await post(body), 413));
  });

  it('a body just under 1 MiB is parsed (and refused for its content, not its size)', async () => {
    const filler = 'x'.repeat(1024 * 1024 - 200);
    const body = JSON.stringify(productBody({ nombre: 'a', precio: 1, descripcion: filler }));
    expect(Buffer.byteLength(body)).toBeLessThan(1024 * 1024);
    await expectNoWrite(ctx.db(), async () => expectError(await post(body), 400, DESCRIPCION));
  });
});

itAnsweredNoServerError(ctx);
