import { beforeAll, describe, expect, it } from 'vitest';
import {
  expectError,
  expectNoWrite,
  historyOf,
  ISO_UTC,
  JSONAPI,
  MAX_INT,
  metric,
  purchaseBody,
  type Source,
  send,
  stockEvents,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp();
const post = (body: unknown, headers?: Record<string, string | undefined>) =>
  send(ctx.app(), 'POST', '/api/purchases', { body, ...(headers ? { headers } : {}) });

/** Posts a purchase that must be refused with `status`, asserting that nothing was written. */
const refused = (
  body: unknown,
  status: number,
  source?: Source | Source[],
  headers?: Record<string, string | undefined>,
) => expectNoWrite(ctx.db(), async () => expectError(await post(body, headers), status, source));

const PRODUCTO_ID = { pointer: '/data/attributes/producto_id' };
const CANTIDAD = { pointer: '/data/attributes/cantidad' };

/** The purchase's history row and its events, as stored. */
async function stored(purchaseId: string) {
  const { rows } = await ctx.db().pool.query(
    `SELECT producto_id, cantidad, precio_unitario::text AS precio_unitario, total::text AS total
         FROM historial_compras WHERE id = $1`,
    [Number(purchaseId)],
  );
  const events = await ctx
    .db()
    .pool.query(`SELECT data FROM outbox WHERE type = 'purchase.completed' AND data->>'purchase_id' = $1`, [
      purchaseId,
    ]);
  return { row: rows[0], events: events.rows.map((r) => r.data) };
}

describe('POST /api/purchases — success', () => {
  it('answers 201 with Location, the purchase, its relationship and the product included', async () => {
    const id = await ctx.createProduct(19.99, 'Café');
    await ctx.setStock(id, 10);
    const res = await post(purchaseBody(id, 3));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['content-type']).toBe(JSONAPI);
    const body = res.json();
    const purchaseId = body.data.id;
    expect(purchaseId).toMatch(/^[1-9][0-9]*$/);
    expect(res.headers.location).toBe(`/api/purchases/${purchaseId}`);
    const product = await send(ctx.products().app, 'GET', `/api/products/${id}`);
    expect(body).toEqual({
      data: {
        type: 'purchases',
        id: purchaseId,
        attributes: {
          producto_id: id,
          cantidad: 3,
          precio_unitario: 19.99,
          total: 59.97,
          created_at: expect.stringMatching(ISO_UTC),
          estado: 'completada',
          cancelada_at: null,
        },
        relationships: {
          product: { data: { type: 'products', id: String(id) } },
          order: { data: null },
        },
        links: { self: `/api/purchases/${purchaseId}` },
      },
      included: [product.json().data],
      links: { self: `/api/purchases/${purchaseId}` },
    });
    expect(await stockOf(ctx.db(), id)).toBe(7);
    expect(await stored(purchaseId)).toEqual({
      row: { producto_id: id, cantidad: 3, precio_unitario: '19.99', total: '59.97' },
      events: [
        {
          purchase_id: purchaseId,
          producto_id: id,
          cantidad: 3,
          precio_unitario: 19.99,
          total: 59.97,
          order_id: null,
        },
      ],
    });
    expect((await stockEvents(ctx.db(), id)).at(-1)).toEqual({
      cantidad_anterior: 10,
      cantidad: 7,
      causa: 'purchase',
    });
  });

  it('sells the last units, leaving exactly 0', async () => {
    const id = await ctx.createProduct(1);
    await ctx.setStock(id, 2);
    expect((await post(purchaseBody(id, 2))).statusCode).toBe(201);
    expect(await stockOf(ctx.db(), id)).toBe(0);
  });

  it('prices at the product precio of the moment of purchase', async () => {
    const id = await ctx.createProduct(5);
    await ctx.setStock(id, 5);
    await send(ctx.products().app, 'PATCH', `/api/products/${id}`, {
      body: { data: { type: 'products', id: String(id), attributes: { precio: 6.25 } } },
    });
    const res = await post(purchaseBody(id, 2));
    expect(res.json().data.attributes).toMatchObject({ precio_unitario: 6.25, total: 12.5 });
    expect(res.json().included[0].attributes.precio).toBe(6.25);
  });
});

describe('money: totals are exact decimals', () => {
  it('0.1 × 3 is 0.3 in the JSON and exactly 0.30 in the total column', async () => {
    const id = await ctx.createProduct(0.1);
    await ctx.setStock(id, 3);
    const res = await post(purchaseBody(id, 3));
    expect(res.statusCode).toBe(201);
    // The raw text, not a parsed float: 0.30000000000000004 would parse "close enough".
    expect(res.body).toContain('"total":0.3,');
    expect(res.body).toContain('"precio_unitario":0.1,');
    expect((await stored(res.json().data.id)).row).toMatchObject({ precio_unitario: '0.10', total: '0.30' });
  });

  it.each([
    [19.99, 7, '139.93'],
    [0.07, 3, '0.21'],
    [1.1, 3, '3.30'],
    [0.01, MAX_INT, '21474836.47'],
  ])('%s × %s = %s', async (precio, cantidad, total) => {
    const id = await ctx.createProduct(precio);
    await ctx.setStock(id, cantidad);
    const res = await post(purchaseBody(id, cantidad));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.body).toContain(`"total":${Number(total)},`);
    expect((await stored(res.json().data.id)).row.total).toBe(total);
  });

  it('99999999.99 × 1 is recorded: the largest total the column holds', async () => {
    const id = await ctx.createProduct(99999999.99);
    await ctx.setStock(id, 5);
    const res = await post(purchaseBody(id, 1));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().data.attributes.total).toBe(99999999.99);
    expect((await stored(res.json().data.id)).row.total).toBe('99999999.99');
  });

  it('99999999.99 × 2 is a 422 and writes nothing', async () => {
    const id = await ctx.createProduct(99999999.99);
    await ctx.setStock(id, 5);
    const errors = await refused(purchaseBody(id, 2), 422, CANTIDAD);
    expect(errors[0]!.detail).toContain('99999999.99');
    expect(await stockOf(ctx.db(), id)).toBe(5);
  });

  it('0.01 above the limit is a 422 too', async () => {
    const id = await ctx.createProduct(50000000);
    await ctx.setStock(id, 5);
    await refused(purchaseBody(id, 2), 422, CANTIDAD);
  });
});

describe('POST /api/purchases — refusals write nothing', () => {
  let id: number;
  beforeAll(async () => {
    id = await ctx.createProduct(2);
    await ctx.setStock(id, 5);
  });

  it('404 "Producto no encontrado" for a product Products does not know', async () => {
    const errors = await refused(purchaseBody(1_666_666_666, 1), 404);
    expect(errors[0]!.detail).toBe('Producto no encontrado');
  });

  it('409 "Inventario insuficiente" with meta.disponible when the stock is short', async () => {
    const errors = await refused(purchaseBody(id, 6), 409);
    expect(errors[0]!.detail).toBe('Inventario insuficiente');
    expect(errors[0]!.meta).toEqual({ disponible: 5 });
  });

  it('409 with meta.disponible 0 for a product without an inventory row, creating none', async () => {
    const bare = await ctx.createProduct(2);
    const errors = await refused(purchaseBody(bare, 1), 409);
    expect(errors[0]!.detail).toBe('Inventario insuficiente');
    expect(errors[0]!.meta).toEqual({ disponible: 0 });
    expect(await stockOf(ctx.db(), bare)).toBeUndefined();
  });

  it('409 with meta.disponible 0 for a sold-out product', async () => {
    const soldOut = await ctx.createProduct(2);
    await ctx.setStock(soldOut, 0);
    expect((await refused(purchaseBody(soldOut, 1), 409))[0]!.meta).toEqual({ disponible: 0 });
  });

  it.each<[string, Record<string, unknown>, Source[]]>([
    ['missing', {}, [PRODUCTO_ID, CANTIDAD]],
    ['a string producto_id', { producto_id: '1', cantidad: 1 }, [PRODUCTO_ID]],
    ['producto_id 0', { producto_id: 0, cantidad: 1 }, [PRODUCTO_ID]],
    ['a negative producto_id', { producto_id: -4, cantidad: 1 }, [PRODUCTO_ID]],
    ['a fractional producto_id', { producto_id: 1.5, cantidad: 1 }, [PRODUCTO_ID]],
    ['producto_id above 2147483647', { producto_id: MAX_INT + 1, cantidad: 1 }, [PRODUCTO_ID]],
    ['cantidad 0', { producto_id: 1, cantidad: 0 }, [CANTIDAD]],
    ['a negative cantidad', { producto_id: 1, cantidad: -2 }, [CANTIDAD]],
    ['a fractional cantidad', { producto_id: 1, cantidad: 1.5 }, [CANTIDAD]],
    ['cantidad above 2147483647', { producto_id: 1, cantidad: MAX_INT + 1 }, [CANTIDAD]],
    ['a null cantidad', { producto_id: 1, cantidad: null }, [CANTIDAD]],
  ])('400 for %s', async (_name, attributes, sources) => {
    await refused({ data: { type: 'purchases', attributes } }, 400, sources);
  });

  it.each([
    ['missing producto_id', { cantidad: 1 }, PRODUCTO_ID],
    ['missing cantidad', { producto_id: 1 }, CANTIDAD],
  ])('400 for a %s', async (_name, attributes, source) => {
    await refused({ data: { type: 'purchases', attributes } }, 400, source);
  });

  it.each([
    ['total', 6],
    ['precio_unitario', 2],
    ['created_at', '2026-01-01T00:00:00.000Z'],
  ])('400 for the read-only attribute %s, naming it', async (name, value) => {
    const body = { data: { type: 'purchases', attributes: { producto_id: id, cantidad: 1, [name]: value } } };
    const errors = await refused(body, 400, { pointer: `/data/attributes/${name}` });
    expect(errors[0]!.detail).toContain('solo lectura');
  });

  it('400 for an unknown attribute, a body without data, and invalid JSON', async () => {
    await refused(
      { data: { type: 'purchases', attributes: { producto_id: id, cantidad: 1, descuento: 1 } } },
      400,
      { pointer: '/data/attributes/descuento' },
    );
    await refused({ producto_id: id, cantidad: 1 }, 400);
    await refused('{"data": {', 400);
    await refused('[]', 400);
  });

  it('413 for a body over 1 MiB', async () => {
    const huge = JSON.stringify({ ...purchaseBody(id, 1), meta: { padding: 'x'.repeat(1024 * 1024) } });
    const errors = await refused(huge, 413);
    expect(errors[0]!.title).toBe('Payload Too Large');
  });

  it('406 for an Accept naming JSON:API only with a parameter it cannot honour', async () => {
    await refused(purchaseBody(id, 1), 406, { header: 'Accept' }, { accept: `${JSONAPI}; version=2` });
  });

  it('403 for a client-supplied id', async () => {
    await refused(
      { data: { type: 'purchases', id: '77', attributes: { producto_id: id, cantidad: 1 } } },
      403,
      {
        pointer: '/data/id',
      },
    );
  });

  it('409 for a wrong type', async () => {
    await refused({ data: { type: 'inventories', attributes: { producto_id: id, cantidad: 1 } } }, 409, {
      pointer: '/data/type',
    });
  });

  it.each([['application/json'], ['text/plain'], [`${JSONAPI}; charset=utf-8`], [undefined]])(
    '415 for Content-Type %s',
    async (contentType) => {
      await refused(purchaseBody(id, 1), 415, undefined, { 'content-type': contentType });
    },
  );

  it('401 without a valid key', async () => {
    const errors = await refused(purchaseBody(id, 1), 401, undefined, { 'x-api-key': undefined });
    expect(errors[0]!.detail).toBe('API Key inválida o ausente');
    await refused(purchaseBody(id, 1), 401, undefined, { 'x-api-key': 'bad' });
  });

  it('left the stock and history of the product untouched', async () => {
    expect(await stockOf(ctx.db(), id)).toBe(5);
    expect(await historyOf(ctx.db(), id)).toEqual({ rows: 0, units: 0 });
  });
});

describe('purchase metrics', () => {
  it('counts purchases by outcome', async () => {
    const completed = (await metric(ctx.app(), 'purchases_total', { outcome: 'completed' })) ?? 0;
    const insufficient = (await metric(ctx.app(), 'purchases_total', { outcome: 'insufficient_stock' })) ?? 0;
    const notFound = (await metric(ctx.app(), 'purchases_total', { outcome: 'product_not_found' })) ?? 0;
    const tooLarge = (await metric(ctx.app(), 'purchases_total', { outcome: 'total_too_large' })) ?? 0;
    const id = await ctx.createProduct(99999999.99);
    await ctx.setStock(id, 1);
    expect((await post(purchaseBody(id, 1))).statusCode).toBe(201);
    expect((await post(purchaseBody(id, 1))).statusCode).toBe(409);
    expect((await post(purchaseBody(id, 2))).statusCode).toBe(422);
    expect((await post(purchaseBody(1_555_555_555, 1))).statusCode).toBe(404);
    expect(await metric(ctx.app(), 'purchases_total', { outcome: 'completed' })).toBe(completed + 1);
    expect(await metric(ctx.app(), 'purchases_total', { outcome: 'insufficient_stock' })).toBe(
      insufficient + 1,
    );
    expect(await metric(ctx.app(), 'purchases_total', { outcome: 'total_too_large' })).toBe(tooLarge + 1);
    expect(await metric(ctx.app(), 'purchases_total', { outcome: 'product_not_found' })).toBe(notFound + 1);
  });
});
