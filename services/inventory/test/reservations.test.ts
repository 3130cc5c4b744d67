/**
 * Reservations: stock held while the customer pays. Making one moves every line's units from
 * `cantidad` to `reservado` at fixed prices, or none; confirming sells them as an order at those
 * prices without asking Products; cancelling or expiring gives them back. Every refusal writes
 * nothing and emits nothing.
 */
import { describe, expect, it } from 'vitest';
import {
  buildInventory,
  closedPort,
  databaseState,
  expectBooks,
  expectError,
  expectLedgerBalanced,
  expectNoWrite,
  ISO_UTC,
  MAX_INT,
  reservationBody,
  reservationPatch,
  send,
  useInventoryApp,
} from './helpers.js';

// A slow sweeper here, so that a test can hold a reservation past its time without it expiring.
const ctx = useInventoryApp({ RESERVATION_SWEEP_MS: '4000' });

async function stocked(cantidad: number, precio = 2): Promise<number> {
  const id = await ctx.createProduct(precio);
  await ctx.setStock(id, cantidad);
  return id;
}

const levels = async (id: number) =>
  (await ctx.db().pool.query('SELECT cantidad, reservado FROM inventario WHERE producto_id = $1', [id]))
    .rows[0];

const reserve = (lineas: { producto_id: number; cantidad: number }[], expiraEn?: number) =>
  send(ctx.app(), 'POST', '/api/reservations', { body: reservationBody(lineas, expiraEn) });

const patch = (id: string, estado: string) =>
  send(ctx.app(), 'PATCH', `/api/reservations/${id}`, { body: reservationPatch(id, estado) });

const eventsAfter = async (seq: number) =>
  (
    await ctx
      .db()
      .pool.query<{ type: string; data: Record<string, unknown> }>(
        'SELECT type, data FROM outbox WHERE seq > $1 ORDER BY seq',
        [seq],
      )
  ).rows;
const lastSeq = async () =>
  Number((await ctx.db().pool.query('SELECT coalesce(max(seq), 0) AS s FROM outbox')).rows[0].s);

describe('POST /api/reservations', () => {
  it('holds every line: cantidad → reservado, prices fixed, expira_at set, events and movements', async () => {
    const [a, b] = [await stocked(10, 0.1), await stocked(4, 19.99)];
    const seq = await lastSeq();
    const started = Date.now();
    const res = await reserve(
      [
        { producto_id: b, cantidad: 4 },
        { producto_id: a, cantidad: 3 },
      ],
      600,
    );
    expect(res.statusCode).toBe(201);
    const body = res.json();
    const id = body.data.id;
    expect(res.headers.location).toBe(`/api/reservations/${id}`);
    expect(body.data).toEqual({
      type: 'reservations',
      id: expect.stringMatching(/^[1-9][0-9]*$/),
      attributes: {
        lineas: [
          { producto_id: b, cantidad: 4, precio_unitario: 19.99, total: 79.96 },
          { producto_id: a, cantidad: 3, precio_unitario: 0.1, total: 0.3 },
        ],
        total: 80.26,
        estado: 'activa',
        expira_at: expect.stringMatching(ISO_UTC),
        created_at: expect.stringMatching(ISO_UTC),
      },
      relationships: { order: { data: null } },
      links: { self: `/api/reservations/${id}` },
    });
    const expiresIn = Date.parse(body.data.attributes.expira_at) - started;
    expect(expiresIn).toBeGreaterThan(590_000);
    expect(expiresIn).toBeLessThan(610_000);
    expect(body.included.map((p: { id: string }) => p.id)).toEqual([String(b), String(a)]);
    expect(await levels(a)).toEqual({ cantidad: 7, reservado: 3 });
    expect(await levels(b)).toEqual({ cantidad: 0, reservado: 4 });
    const events = await eventsAfter(seq);
    expect(events.map((e) => [e.type, e.data.causa])).toEqual([
      ['inventory.updated', 'reservation'],
      ['inventory.updated', 'reservation'],
      ['reservation.created', undefined],
    ]);
    expect(events[0]!.data).toMatchObject({ reservado_anterior: 0, reservado: a < b ? 3 : 4 });
    expect(events[2]!.data).toEqual({
      reservation_id: id,
      lineas: [
        { producto_id: b, cantidad: 4 },
        { producto_id: a, cantidad: 3 },
      ],
      expira_at: body.data.attributes.expira_at,
    });
    const inventory = await send(ctx.app(), 'GET', `/api/inventory/${a}`);
    expect(inventory.json().data.attributes).toMatchObject({ cantidad: 7, reservado: 3 });
    await expectBooks(ctx.db(), a, 10);
    await expectLedgerBalanced(ctx.db());
    const read = await send(ctx.app(), 'GET', `/api/reservations/${id}`);
    expect(read.json()).toEqual({ data: body.data, links: body.links });
  });

  it('refuses short lines (one 409 each), missing products (404 each), repeats and bad expira_en (400): nothing written', async () => {
    const [a, b] = [await stocked(2), await stocked(2)];
    const short = await expectNoWrite(ctx.db(), () =>
      reserve([
        { producto_id: a, cantidad: 2 },
        { producto_id: b, cantidad: 3 },
      ]),
    );
    expect(
      expectError(short, 409, { pointer: '/data/attributes/lineas/1/cantidad' }).map((e) => e.meta),
    ).toEqual([{ disponible: 2 }]);
    await expectNoWrite(ctx.db(), async () => {
      expectError(await reserve([{ producto_id: 1_999_999_999, cantidad: 1 }]), 404, {
        pointer: '/data/attributes/lineas/0/producto_id',
      });
      expectError(
        await reserve([
          { producto_id: a, cantidad: 1 },
          { producto_id: a, cantidad: 1 },
        ]),
        400,
        { pointer: '/data/attributes/lineas/1/producto_id' },
      );
      for (const expiraEn of [0, 86_401]) {
        expectError(await reserve([{ producto_id: a, cantidad: 1 }], expiraEn), 400, {
          pointer: '/data/attributes/expira_en',
        });
      }
    });
  });

  it('lists newest first with filter[estado]; 400 for an unknown estado; 404 for an unknown reservation', async () => {
    const a = await stocked(10);
    const first = (await reserve([{ producto_id: a, cantidad: 1 }])).json().data.id;
    const second = (await reserve([{ producto_id: a, cantidad: 1 }])).json().data.id;
    expect((await patch(first, 'cancelada')).statusCode).toBe(200);
    const active = await send(ctx.app(), 'GET', '/api/reservations?filter[estado]=activa');
    expect(active.json().data.map((r: { id: string }) => r.id)).toContain(second);
    expect(active.json().data.map((r: { id: string }) => r.id)).not.toContain(first);
    const cancelled = await send(ctx.app(), 'GET', '/api/reservations?filter[estado]=cancelada&page[size]=1');
    expect(cancelled.json().data.map((r: { id: string }) => r.id)).toEqual([first]);
    expectError(await send(ctx.app(), 'GET', '/api/reservations?filter[estado]=pagada'), 400, {
      parameter: 'filter[estado]',
    });
    expectError(await send(ctx.app(), 'GET', '/api/reservations/1999999999'), 404);
  });
});

describe('PATCH /api/reservations/{id}', () => {
  it('confirming sells the held units as an order at the kept prices; confirming again changes nothing', async () => {
    const a = await stocked(5, 3);
    const id = (await reserve([{ producto_id: a, cantidad: 2 }])).json().data.id;
    // The price changes after the reservation: the sale keeps the reserved price.
    await ctx.products().app.inject({
      method: 'PATCH',
      url: `/api/products/${a}`,
      headers: { 'x-api-key': 'test-key', 'content-type': 'application/vnd.api+json' },
      payload: { data: { type: 'products', id: String(a), attributes: { precio: 99 } } },
    });
    const seq = await lastSeq();
    const res = await patch(id, 'confirmada');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.data.attributes.estado).toBe('confirmada');
    const orderId = body.data.relationships.order.data.id;
    expect(body.included).toEqual([
      expect.objectContaining({
        type: 'orders',
        id: orderId,
        attributes: expect.objectContaining({
          lineas: [{ producto_id: a, cantidad: 2, precio_unitario: 3, total: 6 }],
          total: 6,
          estado: 'completado',
        }),
        relationships: expect.objectContaining({ reservation: { data: { type: 'reservations', id } } }),
      }),
    ]);
    expect(await levels(a)).toEqual({ cantidad: 3, reservado: 0 });
    const events = await eventsAfter(seq);
    expect(events.map((e) => e.type)).toEqual([
      'inventory.updated',
      'purchase.completed',
      'order.completed',
      'reservation.confirmed',
    ]);
    expect(events[0]!.data).toMatchObject({
      causa: 'confirmation',
      cantidad: 3,
      reservado_anterior: 2,
      reservado: 0,
    });
    expect(events[2]!.data).toMatchObject({ order_id: orderId, reservation_id: id });
    expect(events[3]!.data).toMatchObject({ reservation_id: id, order_id: orderId });

    const again = await expectNoWrite(ctx.db(), () => patch(id, 'confirmada'));
    expect(again.statusCode).toBe(200);
    expect(again.json().data).toEqual(body.data);
    // Confirmed: no longer cancellable.
    const cancel = await expectNoWrite(ctx.db(), () => patch(id, 'cancelada'));
    expect(expectError(cancel, 409)[0]!.detail).toBe('La reserva ya está confirmada');
    await expectBooks(ctx.db(), a, 5);
    await expectLedgerBalanced(ctx.db());
  });

  it('cancelling gives the units back; cancelling again changes nothing; a cancelled one cannot be confirmed', async () => {
    const a = await stocked(5);
    const id = (await reserve([{ producto_id: a, cantidad: 5 }])).json().data.id;
    const seq = await lastSeq();
    const res = await patch(id, 'cancelada');
    expect(res.statusCode).toBe(200);
    expect(res.json().data.attributes.estado).toBe('cancelada');
    expect(await levels(a)).toEqual({ cantidad: 5, reservado: 0 });
    expect((await eventsAfter(seq)).map((e) => [e.type, e.data.causa])).toEqual([
      ['inventory.updated', 'release'],
      ['reservation.cancelled', undefined],
    ]);
    const again = await expectNoWrite(ctx.db(), () => patch(id, 'cancelada'));
    expect(again.statusCode).toBe(200);
    const confirm = await expectNoWrite(ctx.db(), () => patch(id, 'confirmada'));
    expect(expectError(confirm, 409)[0]!.detail).toBe('Reserva cancelada');
    await expectBooks(ctx.db(), a, 5);
    await expectLedgerBalanced(ctx.db());
  });

  it('cancelling is a 409 stock_overflow when the units no longer fit the stock; setting cantidad keeps reservado', async () => {
    const a = await stocked(5);
    const id = (await reserve([{ producto_id: a, cantidad: 2 }])).json().data.id;
    await ctx.setStock(a, MAX_INT);
    expect(await levels(a)).toEqual({ cantidad: MAX_INT, reservado: 2 });
    const res = await expectNoWrite(ctx.db(), () => patch(id, 'cancelada'));
    expect(expectError(res, 409)[0]!.code).toBe('stock_overflow');
  });

  it('from expira_at on it can no longer be confirmed, even before the sweep: 409 and nothing written', async () => {
    const a = await stocked(5);
    const id = (await reserve([{ producto_id: a, cantidad: 1 }])).json().data.id;
    await ctx
      .db()
      .pool.query("UPDATE reservas SET expira_at = LOCALTIMESTAMP - interval '1 second' WHERE id = $1", [
        Number(id),
      ]);
    const res = await expectNoWrite(ctx.db(), () => patch(id, 'confirmada'));
    expect(expectError(res, 409)[0]!.detail).toBe('Reserva expirada');
  });

  it('400 for another estado or attribute, 404, 409 for a wrong type or id, 415, 401: nothing written', async () => {
    const a = await stocked(5);
    const id = (await reserve([{ producto_id: a, cantidad: 1 }])).json().data.id;
    const raw = (body: unknown, headers: Record<string, string | undefined> = {}) =>
      send(ctx.app(), 'PATCH', `/api/reservations/${id}`, { body, headers });
    await expectNoWrite(ctx.db(), async () => {
      expectError(await patch(id, 'expirada'), 400, { pointer: '/data/attributes/estado' });
      expectError(await patch(id, 'activa'), 400, { pointer: '/data/attributes/estado' });
      expectError(
        await raw({ data: { type: 'reservations', id, attributes: { estado: 'cancelada', expira_en: 5 } } }),
        400,
        {
          pointer: '/data/attributes/expira_en',
        },
      );
      expectError(await patch('1999999999', 'confirmada'), 404);
      expectError(await raw({ data: { type: 'orders', id, attributes: { estado: 'cancelada' } } }), 409, {
        pointer: '/data/type',
      });
      expectError(await raw(reservationPatch('1999999998', 'cancelada')), 409, { pointer: '/data/id' });
      expectError(await raw(reservationPatch(id, 'cancelada'), { 'content-type': 'application/json' }), 415);
      expectError(await raw(reservationPatch(id, 'cancelada'), { 'x-api-key': undefined }), 401);
    });
  });
});

describe('expiry', () => {
  it('within 5 s of expira_at, with no request, the units are back and the reservation reads expirada', async () => {
    const app = await buildInventory(ctx.db().url, ctx.products().url, { RESERVATION_SWEEP_MS: '200' });
    try {
      const a = await stocked(6);
      const res = await send(app, 'POST', '/api/reservations', {
        body: reservationBody([{ producto_id: a, cantidad: 4 }], 1),
      });
      const id = res.json().data.id;
      const expiraAt = Date.parse(res.json().data.attributes.expira_at);
      await expect
        .poll(async () => (await send(app, 'GET', `/api/reservations/${id}`)).json().data.attributes.estado, {
          timeout: 10_000,
          interval: 100,
        })
        .toBe('expirada');
      expect(Date.now() - expiraAt).toBeLessThan(5_000);
      expect(await levels(a)).toEqual({ cantidad: 6, reservado: 0 });
      const { rows } = await ctx
        .db()
        .pool.query(
          `SELECT type, data FROM outbox WHERE type = 'reservation.expired' AND data->>'reservation_id' = $1`,
          [id],
        );
      expect(rows).toHaveLength(1);
      const confirm = await expectNoWrite(ctx.db(), () => patch(id, 'confirmada'));
      expect(expectError(confirm, 409)[0]!.detail).toBe('Reserva expirada');
      expectError(await patch(id, 'cancelada'), 409);
      await expectBooks(ctx.db(), a, 6);
      await expectLedgerBalanced(ctx.db());
    } finally {
      await app.close();
    }
  });
});

describe('Products down', () => {
  it('a reservation gets 503 and writes nothing; the confirmation of one made before succeeds', async () => {
    const a = await stocked(5, 7.5);
    const id = (await reserve([{ producto_id: a, cantidad: 2 }])).json().data.id;
    const down = await buildInventory(ctx.db().url, `http://127.0.0.1:${await closedPort()}`, {
      PRODUCTS_RETRIES: '1',
    });
    try {
      const before = await databaseState(ctx.db());
      const refused = await send(down, 'POST', '/api/reservations', {
        body: reservationBody([{ producto_id: a, cantidad: 1 }]),
      });
      expectError(refused, 503);
      expect(await databaseState(ctx.db())).toEqual(before);
      const confirmed = await send(down, 'PATCH', `/api/reservations/${id}`, {
        body: reservationPatch(id, 'confirmada'),
      });
      expect(confirmed.statusCode).toBe(200);
      expect(confirmed.json().included[0].attributes.total).toBe(15);
    } finally {
      await down.close();
    }
  });
});
