import { beforeAll, describe, expect, it } from 'vitest';
import {
  adjustmentBody,
  expectError,
  expectNoWrite,
  ISO_UTC,
  JSONAPI,
  MAX_INT,
  type Source,
  send,
  setBody,
  stockEvents,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();
const patch = (id: number | string, body: unknown, headers?: Record<string, string | undefined>) =>
  send(ctx.app(), 'PATCH', `/api/inventory/${id}`, { body, ...(headers ? { headers } : {}) });
const adjust = (id: number | string, body: unknown, headers?: Record<string, string | undefined>) =>
  send(ctx.app(), 'POST', `/api/inventory/${id}/adjustments`, { body, ...(headers ? { headers } : {}) });

/** Sends a request that must be refused with `status`, asserting that nothing was written. */
const refused = (request: () => ReturnType<typeof patch>, status: number, source?: Source | Source[]) =>
  expectNoWrite(ctx.db(), async () => expectError(await request(), status, source));

const CANTIDAD = { pointer: '/data/attributes/cantidad' };
const DELTA = { pointer: '/data/attributes/delta' };

describe('PATCH /api/inventory/{id} — success', () => {
  it('creates the row when missing, sets the quantity and records an inventory.updated event', async () => {
    const id = await ctx.createProduct(2.5, 'Goma');
    expect(await stockOf(ctx.db(), id)).toBeUndefined();
    const res = await patch(id, setBody(id, { cantidad: 15 }));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const product = await send(ctx.products().app, 'GET', `/api/products/${id}`);
    expect(res.json()).toEqual({
      data: {
        type: 'inventories',
        id: String(id),
        attributes: {
          producto_id: id,
          cantidad: 15,
          reservado: 0,
          updated_at: expect.stringMatching(ISO_UTC),
        },
        relationships: { product: { data: { type: 'products', id: String(id) } } },
        links: { self: `/api/inventory/${id}` },
      },
      included: [product.json().data],
      links: { self: `/api/inventory/${id}` },
    });
    expect(await stockOf(ctx.db(), id)).toBe(15);
    expect(await stockEvents(ctx.db(), id)).toEqual([{ cantidad_anterior: 0, cantidad: 15, causa: 'set' }]);
  });

  it('replaces an existing quantity, to 0 and to the largest integer, and advances updated_at', async () => {
    const id = await ctx.createProduct(1);
    const first = await patch(id, setBody(id, { cantidad: 9 }));
    const zero = await patch(id, setBody(id, { cantidad: 0 }));
    expect(zero.json().data.attributes.cantidad).toBe(0);
    expect(Date.parse(zero.json().data.attributes.updated_at)).toBeGreaterThanOrEqual(
      Date.parse(first.json().data.attributes.updated_at),
    );
    const max = await patch(id, setBody(id, { cantidad: MAX_INT }));
    expect(max.statusCode).toBe(200);
    expect(await stockOf(ctx.db(), id)).toBe(MAX_INT);
    expect((await stockEvents(ctx.db(), id)).map((e) => [e.cantidad_anterior, e.cantidad])).toEqual([
      [0, 9],
      [9, 0],
      [0, MAX_INT],
    ]);
  });

  it('accepts the ext and profile media type parameters', async () => {
    const id = await ctx.createProduct(1);
    const res = await patch(id, setBody(id, { cantidad: 1 }), {
      'content-type': `${JSONAPI}; ext="https://example.com/ext"`,
    });
    expect(res.statusCode, res.body).toBe(200);
  });
});

describe('PATCH /api/inventory/{id} — refusals write nothing', () => {
  let id: number;
  beforeAll(async () => {
    id = await ctx.createProduct(5);
    await ctx.setStock(id, 4);
  });

  it('404 "Producto no encontrado" for an unknown product, and no row is created', async () => {
    const errors = await refused(() => patch(1_888_888_888, setBody(1_888_888_888, { cantidad: 3 })), 404);
    expect(errors[0]!.detail).toBe('Producto no encontrado');
  });

  it.each([
    ['negative', -1],
    ['non-integer', 1.5],
    ['above 2147483647', MAX_INT + 1],
    ['a string', '3'],
    ['null', null],
  ])('400 for a %s cantidad, pointing at it', async (_name, cantidad) => {
    await refused(() => patch(id, setBody(id, { cantidad })), 400, CANTIDAD);
  });

  it('400 for a missing cantidad', async () => {
    const errors = await refused(() => patch(id, setBody(id, {})), 400, CANTIDAD);
    expect(errors[0]!.detail).toContain('cantidad');
  });

  it.each([
    ['producto_id', 4],
    ['updated_at', '2026-01-01T00:00:00.000Z'],
  ])('400 for the read-only attribute %s, naming it', async (name, value) => {
    const errors = await refused(() => patch(id, setBody(id, { cantidad: 2, [name]: value })), 400, {
      pointer: `/data/attributes/${name}`,
    });
    expect(errors[0]!.detail).toContain('solo lectura');
  });

  it('400 for an unknown attribute', async () => {
    await refused(() => patch(id, setBody(id, { cantidad: 2, color: 'rojo' })), 400, {
      pointer: '/data/attributes/color',
    });
  });

  it('400 for a body without data, invalid JSON, or an empty body', async () => {
    await refused(() => patch(id, { cantidad: 2 }), 400);
    await refused(() => patch(id, '{"data": '), 400);
    await refused(() => patch(id, ''), 400);
  });

  it('400 for a missing data.id', async () => {
    await refused(() => patch(id, { data: { type: 'inventories', attributes: { cantidad: 2 } } }), 400, {
      pointer: '/data/id',
    });
  });

  it('400 source.parameter for a bad path id', async () => {
    await refused(() => patch('abc', setBody('abc', { cantidad: 2 })), 400, { parameter: 'id' });
    await refused(() => patch(MAX_INT + 1, setBody(MAX_INT + 1, { cantidad: 2 })), 400, {
      parameter: 'id',
    });
  });

  it('409 for a wrong type', async () => {
    await refused(
      () => patch(id, { data: { type: 'products', id: String(id), attributes: { cantidad: 2 } } }),
      409,
      { pointer: '/data/type' },
    );
  });

  it('409 for a data.id other than the path id', async () => {
    await refused(() => patch(id, setBody(id + 1, { cantidad: 2 })), 409, { pointer: '/data/id' });
  });

  it.each([['application/json'], ['text/plain'], [`${JSONAPI}; charset=utf-8`], [undefined]])(
    '415 for Content-Type %s',
    async (contentType) => {
      await refused(() => patch(id, setBody(id, { cantidad: 2 }), { 'content-type': contentType }), 415);
    },
  );

  it('401 without a valid key', async () => {
    const errors = await refused(
      () => patch(id, setBody(id, { cantidad: 2 }), { 'x-api-key': undefined }),
      401,
    );
    expect(errors[0]!.detail).toBe('API Key inválida o ausente');
    await refused(() => patch(id, setBody(id, { cantidad: 2 }), { 'x-api-key': 'wrong' }), 401);
  });

  it('left the stock at 4', async () => {
    expect(await stockOf(ctx.db(), id)).toBe(4);
  });
});

describe('POST /api/inventory/{id}/adjustments', () => {
  it('adds a positive delta atomically and answers 201 with the inventory document', async () => {
    const id = await ctx.createProduct(7);
    await ctx.setStock(id, 10);
    const res = await adjust(id, adjustmentBody({ delta: 5, reason: 'Reposición' }));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const product = await send(ctx.products().app, 'GET', `/api/products/${id}`);
    expect(res.json()).toEqual({
      data: {
        type: 'inventories',
        id: String(id),
        attributes: {
          producto_id: id,
          cantidad: 15,
          reservado: 0,
          updated_at: expect.stringMatching(ISO_UTC),
        },
        relationships: { product: { data: { type: 'products', id: String(id) } } },
        links: { self: `/api/inventory/${id}` },
      },
      included: [product.json().data],
      links: { self: `/api/inventory/${id}` },
    });
    expect(await stockOf(ctx.db(), id)).toBe(15);
  });

  it('removes stock with a negative delta, down to exactly 0, recording adjustment events', async () => {
    const id = await ctx.createProduct(7);
    await ctx.setStock(id, 3);
    expect((await adjust(id, adjustmentBody({ delta: -2 }))).json().data.attributes.cantidad).toBe(1);
    expect((await adjust(id, adjustmentBody({ delta: -1 }))).json().data.attributes.cantidad).toBe(0);
    expect(await stockEvents(ctx.db(), id)).toEqual([
      { cantidad_anterior: 0, cantidad: 3, causa: 'set' },
      { cantidad_anterior: 3, cantidad: 1, causa: 'adjustment' },
      { cantidad_anterior: 1, cantidad: 0, causa: 'adjustment' },
    ]);
  });

  it('creates the row for a product without one', async () => {
    const id = await ctx.createProduct(7);
    const res = await adjust(id, adjustmentBody({ delta: 4 }));
    expect(res.statusCode).toBe(201);
    expect(await stockOf(ctx.db(), id)).toBe(4);
  });

  it('accepts a reason of exactly 255 characters', async () => {
    const id = await ctx.createProduct(7);
    expect((await adjust(id, adjustmentBody({ delta: 1, reason: 'r'.repeat(255) }))).statusCode).toBe(201);
  });

  describe('refusals write nothing', () => {
    let id: number;
    beforeAll(async () => {
      id = await ctx.createProduct(3);
      await ctx.setStock(id, 6);
    });

    it('409 "Inventario insuficiente" with meta.disponible for a removal beyond the stock', async () => {
      const errors = await refused(() => adjust(id, adjustmentBody({ delta: -7 })), 409);
      expect(errors[0]!.detail).toBe('Inventario insuficiente');
      expect(errors[0]!.meta).toEqual({ disponible: 6 });
    });

    it('409 with meta.disponible 0 for a removal on a product without a row, creating none', async () => {
      const bare = await ctx.createProduct(3);
      const errors = await refused(() => adjust(bare, adjustmentBody({ delta: -1 })), 409);
      expect(errors[0]!.meta).toEqual({ disponible: 0 });
      expect(await stockOf(ctx.db(), bare)).toBeUndefined();
    });

    it('409 when the result would exceed the largest integer', async () => {
      const full = await ctx.createProduct(3);
      await ctx.setStock(full, MAX_INT - 1);
      await refused(() => adjust(full, adjustmentBody({ delta: 2 })), 409);
    });

    it('400 for delta 0', async () => {
      await refused(() => adjust(id, adjustmentBody({ delta: 0 })), 400, DELTA);
    });

    it.each([
      ['non-integer', 1.5],
      ['string', '2'],
      ['too large', MAX_INT + 1],
      ['too small', -MAX_INT - 1],
    ])('400 for a %s delta', async (_name, delta) => {
      await refused(() => adjust(id, adjustmentBody({ delta })), 400, DELTA);
    });

    it('400 for a missing delta', async () => {
      await refused(() => adjust(id, adjustmentBody({ reason: 'x' })), 400, DELTA);
    });

    it('400 for a reason longer than 255 characters, or not a string, or with NUL', async () => {
      const REASON = { pointer: '/data/attributes/reason' };
      await refused(() => adjust(id, adjustmentBody({ delta: 1, reason: 'r'.repeat(256) })), 400, REASON);
      await refused(() => adjust(id, adjustmentBody({ delta: 1, reason: 5 })), 400, REASON);
      await refused(() => adjust(id, adjustmentBody({ delta: 1, reason: 'a\u0000b' })), 400, REASON);
    });

    it('400 for an unknown or read-only attribute', async () => {
      await refused(() => adjust(id, adjustmentBody({ delta: 1, cantidad: 3 })), 400, {
        pointer: '/data/attributes/cantidad',
      });
      await refused(() => adjust(id, adjustmentBody({ delta: 1, producto_id: id })), 400, {
        pointer: '/data/attributes/producto_id',
      });
    });

    it('409 for a wrong type', async () => {
      await refused(() => adjust(id, { data: { type: 'inventories', attributes: { delta: 1 } } }), 409, {
        pointer: '/data/type',
      });
    });

    it('403 for a client-supplied id', async () => {
      await refused(
        () => adjust(id, { data: { type: 'inventory-adjustments', id: '1', attributes: { delta: 1 } } }),
        403,
        { pointer: '/data/id' },
      );
    });

    it('404 "Producto no encontrado" for an unknown product, creating no row', async () => {
      const errors = await refused(() => adjust(1_777_777_777, adjustmentBody({ delta: 1 })), 404);
      expect(errors[0]!.detail).toBe('Producto no encontrado');
    });

    it('400 source.parameter for a bad path id', async () => {
      await refused(() => adjust('0', adjustmentBody({ delta: 1 })), 400, { parameter: 'id' });
    });

    it('415 for a non-JSON:API Content-Type, 401 without a key', async () => {
      await refused(
        () => adjust(id, adjustmentBody({ delta: 1 }), { 'content-type': 'application/json' }),
        415,
      );
      await refused(() => adjust(id, adjustmentBody({ delta: 1 }), { 'x-api-key': undefined }), 401);
    });

    it('left the stock at 6', async () => {
      expect(await stockOf(ctx.db(), id)).toBe(6);
    });
  });
});
