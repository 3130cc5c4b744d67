/**
 * Conditional requests: a strong ETag on a product and on an inventory, 304 for a matching
 * If-None-Match, and 412 with nothing written for a PATCH whose If-Match names a version that is no
 * longer current. The race guarded against: a client that read a stock, computed a new value and
 * writes it back, overwriting a purchase (or any other change) made in between.
 */
import { describe, expect, it } from 'vitest';
import {
  adjustmentBody,
  databaseState,
  expectError,
  expectNoWrite,
  orderBody,
  purchaseBody,
  reservationBody,
  reservationPatch,
  send,
  setBody,
  stockOf,
  useInventoryApp,
} from './helpers.js';

const ctx = useInventoryApp({ RESERVATION_SWEEP_MS: '4000' });
const STALE = 'El recurso cambió; vuelva a leerlo';

const inventory = (id: number, headers: Record<string, string> = {}) =>
  send(ctx.app(), 'GET', `/api/inventory/${id}`, { headers: { 'x-api-key': 'test-key', ...headers } });

async function etagOfInventory(id: number): Promise<string> {
  const res = await inventory(id);
  expect(res.statusCode).toBe(200);
  const etag = res.headers.etag as string;
  expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
  return etag;
}

describe('products', () => {
  const products = () => ctx.products().app;
  const get = (id: number, headers: Record<string, string> = {}) =>
    send(products(), 'GET', `/api/products/${id}`, { headers: { 'x-api-key': 'test-key', ...headers } });
  const patch = (id: number, precio: number, headers: Record<string, string> = {}) =>
    send(products(), 'PATCH', `/api/products/${id}`, {
      body: { data: { type: 'products', id: String(id), attributes: { precio } } },
      headers,
    });

  it('GET carries a strong ETag; a matching If-None-Match is a 304 with no body; a change changes the ETag', async () => {
    const id = await ctx.createProduct(5);
    const first = await get(id);
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const cached = await get(id, { 'if-none-match': etag });
    expect(cached.statusCode).toBe(304);
    expect(cached.body).toBe('');
    expect(cached.headers.etag).toBe(etag);
    expect((await get(id, { 'if-none-match': '"otra"' })).statusCode).toBe(200);

    const changed = await patch(id, 6, { 'if-match': etag });
    expect(changed.statusCode).toBe(200);
    const next = changed.headers.etag as string;
    expect(next).not.toBe(etag);
    expect((await get(id)).headers.etag).toBe(next);
    expect((await get(id, { 'if-none-match': etag })).statusCode).toBe(200);
  });

  it('PATCH with a stale If-Match is a 412 and changes nothing', async () => {
    const id = await ctx.createProduct(5);
    const stale = (await get(id)).headers.etag as string;
    expect((await patch(id, 7)).statusCode).toBe(200);
    const before = (await get(id)).body;
    const res = await patch(id, 8, { 'if-match': stale });
    expect(expectError(res, 412, { header: 'If-Match' })[0]!.detail).toBe(STALE);
    expect((await get(id)).body).toBe(before);
    expectError(await patch(1_999_999_999, 8, { 'if-match': stale }), 404);
  });
});

describe('inventories', () => {
  it('the ETag changes with every kind of stock change, and a matching If-None-Match is a 304', async () => {
    const id = await ctx.createProduct(2);
    const seen = new Set<string>([await etagOfInventory(id)]);
    const changes = [
      () => send(ctx.app(), 'PATCH', `/api/inventory/${id}`, { body: setBody(id, { cantidad: 20 }) }),
      () =>
        send(ctx.app(), 'POST', `/api/inventory/${id}/adjustments`, { body: adjustmentBody({ delta: 1 }) }),
      () => send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 1) }),
      () => send(ctx.app(), 'POST', '/api/orders', { body: orderBody([{ producto_id: id, cantidad: 1 }]) }),
      () =>
        send(ctx.app(), 'POST', '/api/reservations', {
          body: reservationBody([{ producto_id: id, cantidad: 1 }]),
        }),
      // A set to the very same quantity is a change too (it writes a movement).
      () => send(ctx.app(), 'PATCH', `/api/inventory/${id}`, { body: setBody(id, { cantidad: 18 }) }),
    ];
    for (const change of changes) {
      expect((await change()).statusCode).toBeLessThan(300);
      const etag = await etagOfInventory(id);
      expect(seen.has(etag)).toBe(false);
      seen.add(etag);
      const cached = await inventory(id, { 'if-none-match': etag });
      expect(cached.statusCode).toBe(304);
      expect(cached.body).toBe('');
    }
  });

  it('a PATCH with the ETag read before a purchase is a 412 and overwrites nothing; with the current one it succeeds', async () => {
    const id = await ctx.createProduct(2);
    await ctx.setStock(id, 10);
    const read = await etagOfInventory(id);
    expect((await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 3) })).statusCode).toBe(
      201,
    );
    const res = await expectNoWrite(ctx.db(), () =>
      send(ctx.app(), 'PATCH', `/api/inventory/${id}`, {
        body: setBody(id, { cantidad: 11 }),
        headers: { 'if-match': read },
      }),
    );
    expect(expectError(res, 412, { header: 'If-Match' })[0]!.detail).toBe(STALE);
    expect(await stockOf(ctx.db(), id)).toBe(7);
    const current = await etagOfInventory(id);
    const ok = await send(ctx.app(), 'PATCH', `/api/inventory/${id}`, {
      body: setBody(id, { cantidad: 8 }),
      headers: { 'if-match': current },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers.etag).toBe(await etagOfInventory(id));
  });

  it('the ETag of a product never stocked is good for its first PATCH', async () => {
    const id = await ctx.createProduct(2);
    const res = await send(ctx.app(), 'PATCH', `/api/inventory/${id}`, {
      body: setBody(id, { cantidad: 4 }),
      headers: { 'if-match': await etagOfInventory(id) },
    });
    expect(res.statusCode).toBe(200);
  });
});

describe('purchases, orders and reservations', () => {
  it('a PATCH with a stale If-Match is a 412 and writes nothing; with the current ETag it proceeds', async () => {
    const id = await ctx.createProduct(2);
    await ctx.setStock(id, 50);
    const purchase = (await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 1) })).json()
      .data.id;
    const order = (
      await send(ctx.app(), 'POST', '/api/orders', { body: orderBody([{ producto_id: id, cantidad: 1 }]) })
    ).json().data.id;
    const reservation = (
      await send(ctx.app(), 'POST', '/api/reservations', {
        body: reservationBody([{ producto_id: id, cantidad: 1 }]),
      })
    ).json().data.id;
    const cases = [
      {
        path: `/api/purchases/${purchase}`,
        body: { data: { type: 'purchases', id: purchase, attributes: { estado: 'cancelada' } } },
      },
      {
        path: `/api/orders/${order}`,
        body: { data: { type: 'orders', id: order, attributes: { estado: 'cancelado' } } },
      },
      { path: `/api/reservations/${reservation}`, body: reservationPatch(reservation, 'confirmada') },
    ];
    for (const { path, body } of cases) {
      const etag = (await send(ctx.app(), 'GET', path)).headers.etag as string;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
      const before = await databaseState(ctx.db());
      const stale = await send(ctx.app(), 'PATCH', path, { body, headers: { 'if-match': '"otra-version"' } });
      expect(expectError(stale, 412, { header: 'If-Match' })[0]!.detail).toBe(STALE);
      expect(await databaseState(ctx.db())).toEqual(before);
      const ok = await send(ctx.app(), 'PATCH', path, { body, headers: { 'if-match': etag } });
      expect(ok.statusCode, path).toBe(200);
      expect(ok.headers.etag).toBe((await send(ctx.app(), 'GET', path)).headers.etag);
      // The version it changed is gone: the same If-Match again is a 412.
      expectError(await send(ctx.app(), 'PATCH', path, { body, headers: { 'if-match': etag } }), 412);
    }
  });
});
