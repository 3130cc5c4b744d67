/** GET /api/orders/{id} and GET /api/orders: newest first, filter[producto_id], keyset pages. */
import { describe, expect, it } from 'vitest';
import { expectError, orderBody, send, useInventoryApp } from './helpers.js';

const ctx = useInventoryApp();

async function order(lineas: { producto_id: number; cantidad: number }[]): Promise<string> {
  const res = await send(ctx.app(), 'POST', '/api/orders', { body: orderBody(lineas) });
  if (res.statusCode !== 201) throw new Error(res.body);
  return res.json().data.id;
}

describe('reading orders', () => {
  it('lists newest first, filters by a product of any line, and follows links.next over every order once', async () => {
    const [a, b] = [await ctx.createProduct(1), await ctx.createProduct(2)];
    await ctx.setStock(a, 100);
    await ctx.setStock(b, 100);
    const ids = [
      await order([{ producto_id: a, cantidad: 1 }]),
      await order([
        { producto_id: b, cantidad: 1 },
        { producto_id: a, cantidad: 1 },
      ]),
      await order([{ producto_id: b, cantidad: 2 }]),
    ];
    const all = await send(ctx.app(), 'GET', '/api/orders');
    expect(all.statusCode).toBe(200);
    expect(all.json().data.map((o: { id: string }) => o.id)).toEqual([...ids].reverse());

    const withA = await send(ctx.app(), 'GET', `/api/orders?filter[producto_id]=${a}&page[size]=1`);
    expect(withA.json().data.map((o: { id: string }) => o.id)).toEqual([ids[1]]);
    const next = withA.json().links.next;
    expect(next).toBe(`/api/orders?filter[producto_id]=${a}&page[size]=1&page[after]=${ids[1]}`);
    const second = await send(ctx.app(), 'GET', next);
    expect(second.json().data.map((o: { id: string }) => o.id)).toEqual([ids[0]]);
    expect(second.json().links.next).toBeNull();
  });

  it('404 for an order that does not exist; 400 for a bad id or parameter; 401 without a key', async () => {
    expectError(await send(ctx.app(), 'GET', '/api/orders/1999999999'), 404);
    expectError(await send(ctx.app(), 'GET', '/api/orders/abc'), 400, { parameter: 'id' });
    expectError(await send(ctx.app(), 'GET', '/api/orders?filter[producto_id]=x'), 400, {
      parameter: 'filter[producto_id]',
    });
    expectError(await send(ctx.app(), 'GET', '/api/orders?page[size]=0'), 400, { parameter: 'page[size]' });
    expectError(await send(ctx.app(), 'GET', '/api/orders', { headers: { 'x-api-key': undefined } }), 401);
  });
});
