/**
 * GET /api/events over real HTTP against real PostgreSQL: what a client of the live stream is
 * promised — every delivered event once, in delivery order, resumable, filtered, bounded.
 */
import { connect } from 'node:net';
import type { App } from '@catalogo/kit/app';
import type { Queryable } from '@catalogo/kit/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markPublished } from '../src/outbox/outbox.repository.js';
import {
  API_KEY,
  buildInventory,
  JSONAPI,
  metric,
  purchaseBody,
  send,
  setBody,
  useInventoryApp,
} from './helpers.js';
import { envelopeOf, openEvents, type SseClient, type SseMessage } from './sse.js';

const ctx = useInventoryApp({ OUTBOX_POLL_MS: '20', EVENTS_POLL_MS: '1000' });
let url: string;
const extra: App[] = [];

beforeAll(async () => {
  url = await ctx.app().listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  for (const app of extra) await app.close();
});

/** Another instance on the same database, listening, with its own settings. */
async function instance(env: Record<string, string>): Promise<{ app: App; url: string }> {
  const app = await buildInventory(ctx.db().url, ctx.products().url, { OUTBOX_POLL_MS: '20', ...env });
  extra.push(app);
  return { app, url: await app.listen({ host: '127.0.0.1', port: 0 }) };
}

const setStock = (id: number, cantidad: number) =>
  send(ctx.app(), 'PATCH', `/api/inventory/${id}`, { body: setBody(id, { cantidad }) });

const ofProduct = (messages: SseMessage[], id: number) =>
  messages.filter((m) => {
    const { data } = envelopeOf(m);
    return (
      data.producto_id === id || (Array.isArray(data.lineas) && data.lineas.some((l) => l.producto_id === id))
    );
  });

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('GET /api/events — refusals are JSON:API errors', () => {
  it('401 without a key', async () => {
    const client = await openEvents(url, '', {}, null);
    expect(client.status).toBe(401);
    expect(client.headers['content-type']).toBe(JSONAPI);
    expect(JSON.parse(client.body).errors[0].source).toEqual({ header: 'X-API-Key' });
  });

  it.each([
    ['?types=purchase.completed,nope', { parameter: 'types' }],
    ['?types=', { parameter: 'types' }],
    ['?producto_id=0', { parameter: 'producto_id' }],
    ['?producto_id=abc', { parameter: 'producto_id' }],
    ['?producto_id=2147483648', { parameter: 'producto_id' }],
    ['?last_event_id=-1', { parameter: 'last_event_id' }],
    ['?other=1', { parameter: 'other' }],
  ])('400 for %s', async (query, source) => {
    const client = await openEvents(url, query);
    expectErrorDocumentOf(client.status, client.headers, client.body, 400, source);
  });

  it('400 for a Last-Event-ID that is no number, or that no event has had yet', async () => {
    for (const id of ['abc', '1.5', '99999999999']) {
      const client = await openEvents(url, '', { 'last-event-id': id });
      expectErrorDocumentOf(client.status, client.headers, client.body, 400, { header: 'Last-Event-ID' });
    }
  });
});

describe('GET /api/events — the stream', () => {
  it('sends each delivered event as one message: id, event (the type) and data (the envelope)', async () => {
    const id = await ctx.createProduct(10);
    const client = await openEvents(url, `?producto_id=${id}`);
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(client.headers['x-request-id']).toBeDefined();
    await setStock(id, 5);
    const purchase = await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 2) });
    expect(purchase.statusCode).toBe(201);
    const [set, updated, completed] = await client.waitFor(3);
    client.close();
    expect([set!.event, updated!.event, completed!.event]).toEqual([
      'inventory.updated',
      'inventory.updated',
      'purchase.completed',
    ]);
    const ids = [set!, updated!, completed!].map((m) => Number(m.id));
    expect(ids.every((n, i) => i === 0 || n > ids[i - 1]!)).toBe(true);
    const envelope = envelopeOf(completed!);
    expect(Object.keys(envelope)).toEqual(['id', 'type', 'occurred_at', 'data']);
    expect(envelope.type).toBe('purchase.completed');
    expect(envelope.data).toMatchObject({
      purchase_id: purchase.json().data.id,
      producto_id: id,
      cantidad: 2,
    });
    const { rows } = await ctx
      .db()
      .pool.query('SELECT delivered_seq::text AS seq FROM outbox WHERE id = $1', [envelope.id]);
    expect(rows[0].seq).toBe(completed!.id);
  });

  it('resumes right after Last-Event-ID: no gap, no duplicate', async () => {
    const id = await ctx.createProduct(10);
    const first = await openEvents(url, `?producto_id=${id}`);
    for (let n = 1; n <= 6; n++) await setStock(id, n);
    const seen = await first.waitFor(6);
    first.close();
    const resumeAfter = seen[2]!.id!;
    for (let n = 7; n <= 10; n++) await setStock(id, n);
    // The header wins over the query parameter.
    const resumed = await openEvents(url, `?producto_id=${id}&last_event_id=${seen[0]!.id}`, {
      'last-event-id': resumeAfter,
    });
    const got = await resumed.waitFor(7);
    await setStock(id, 11);
    const all = await resumed.waitFor(8);
    resumed.close();
    expect(got.map((m) => envelopeOf(m).data.cantidad)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    expect(all.map((m) => envelopeOf(m).data.cantidad)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    expect(all.slice(0, 3).map((m) => m.id)).toEqual(seen.slice(3).map((m) => m.id));

    // From the query parameter, and from 0: everything retained.
    const fromParam = await openEvents(url, `?producto_id=${id}&last_event_id=${resumeAfter}`);
    expect((await fromParam.waitFor(8)).map((m) => m.id)).toEqual(all.map((m) => m.id));
    fromParam.close();
    const fromStart = await openEvents(url, `?producto_id=${id}`, { 'last-event-id': '0' });
    expect((await fromStart.waitFor(11)).map((m) => envelopeOf(m).data.cantidad)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    ]);
    fromStart.close();
  });

  it('filters by types and by producto_id (an order counts for each product of its lines)', async () => {
    const a = await ctx.createProduct(3);
    const b = await ctx.createProduct(4);
    const onlyA = await openEvents(url, `?producto_id=${a}&types=purchase.completed,order.completed`);
    const everything = await openEvents(url);
    await setStock(a, 10);
    await setStock(b, 10);
    await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(b, 1) });
    await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(a, 1) });
    const order = await send(ctx.app(), 'POST', '/api/orders', {
      body: {
        data: {
          type: 'orders',
          attributes: {
            lineas: [
              { producto_id: b, cantidad: 1 },
              { producto_id: a, cantidad: 2 },
            ],
          },
        },
      },
    });
    expect(order.statusCode, order.body).toBe(201);
    // inventory.updated ×2, purchase.completed (b), inventory.updated + purchase.completed (a),
    // and the order's 2 inventory.updated, 2 purchase.completed and order.completed.
    await everything.waitFor(10);
    const filtered = await onlyA.waitFor(3);
    everything.close();
    expect(filtered.map((m) => m.event)).toEqual([
      'purchase.completed',
      'purchase.completed',
      'order.completed',
    ]);
    expect(filtered.slice(0, 2).map((m) => envelopeOf(m).data.producto_id)).toEqual([a, a]);
    // Nothing else arrives for it: a later event of b and an inventory.updated of a are left out.
    await setStock(b, 1);
    await setStock(a, 1);
    await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(a, 1) });
    const next = await onlyA.waitFor(4);
    onlyA.close();
    expect(next[3]!.event).toBe('purchase.completed');
    expect(next).toHaveLength(4);
  });

  it("keeps each product's events in commit order under concurrent purchases", async () => {
    const products = [await ctx.createProduct(1), await ctx.createProduct(2)];
    const client = await openEvents(url, `?types=inventory.updated`);
    for (const id of products) await setStock(id, 40);
    const buys = products.flatMap((id) =>
      Array.from({ length: 30 }, () =>
        send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 1) }),
      ),
    );
    const answers = await Promise.all(buys);
    expect(answers.every((r) => r.statusCode === 201)).toBe(true);
    await until(() => products.every((id) => ofProduct(client.messages, id).length >= 31));
    client.close();
    for (const id of products) {
      const [set, ...chain] = ofProduct(client.messages, id).map((m) => envelopeOf(m).data);
      expect(set).toMatchObject({ causa: 'set', cantidad: 40 });
      expect(chain).toHaveLength(30);
      // Each change starts where the one before it left the stock: commit order, none missing.
      chain.forEach((data, i) => {
        expect(data.cantidad_anterior).toBe(i === 0 ? 40 : chain[i - 1]!.cantidad);
        expect(data.cantidad).toBe(39 - i);
      });
    }
    const ids = client.messages.map((m) => Number(m.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
  });

  it('sends an event whose transaction commits after one written later (seq order is not commit order)', async () => {
    const PRODUCT = 2147483002;
    const insert = (db: Queryable, n: number) =>
      db.query(
        `INSERT INTO outbox (type, producto_id, data)
         VALUES ('inventory.updated', $1, jsonb_build_object('producto_id', $1::int, 'n', $2::int)) RETURNING seq::int`,
        [PRODUCT, n],
      );
    const client = await openEvents(url, `?producto_id=${PRODUCT}`);
    const early = await ctx.db().pool.connect();
    try {
      await early.query('BEGIN');
      const { rows: first } = await insert(early, 1);
      const { rows: second } = await insert(ctx.db().pool, 2);
      expect(second[0].seq).toBeGreaterThan(first[0].seq);
      // The later row is delivered and streamed while the earlier one is still uncommitted.
      const [later] = await client.waitFor(1);
      expect(envelopeOf(later!).data.n).toBe(2);
      await early.query('COMMIT');
    } finally {
      early.release();
    }
    const [later, earlier] = await client.waitFor(2);
    client.close();
    expect(envelopeOf(earlier!).data.n).toBe(1);
    expect(Number(earlier!.id)).toBeGreaterThan(Number(later!.id));
    // A client resuming from before both gets both, in the order they were delivered.
    const resumed = await openEvents(url, `?producto_id=${PRODUCT}`, {
      'last-event-id': String(Number(later!.id) - 1),
    });
    expect((await resumed.waitFor(2)).map((m) => envelopeOf(m).data.n)).toEqual([2, 1]);
    resumed.close();
  });

  it('never sends the events of a change that was rolled back, nor of a refused request', async () => {
    const id = await ctx.createProduct(1);
    const client = await openEvents(url, `?producto_id=${id}`);
    const tx = await ctx.db().pool.connect();
    try {
      await tx.query('BEGIN');
      await tx.query(
        `INSERT INTO outbox (type, producto_id, data) VALUES ('inventory.updated', $1, '{"producto_id": ${id}, "cantidad": 999}')`,
        [id],
      );
      await tx.query('ROLLBACK');
    } finally {
      tx.release();
    }
    const refused = await send(ctx.app(), 'POST', '/api/purchases', { body: purchaseBody(id, 5) });
    expect(refused.statusCode).toBe(409);
    await setStock(id, 3);
    const [only] = await client.waitFor(1);
    // Time for anything else to come through the relay and the stream.
    await new Promise((r) => setTimeout(r, 500));
    client.close();
    expect(client.messages).toHaveLength(1);
    expect(envelopeOf(only!).data).toMatchObject({ cantidad_anterior: 0, cantidad: 3 });
  });

  it('says so when Last-Event-ID is older than what is retained, then goes on from the oldest retained', async () => {
    const id = await ctx.createProduct(1);
    const client = await openEvents(url, `?producto_id=${id}`);
    for (let n = 1; n <= 3; n++) await setStock(id, n);
    const seen = await client.waitFor(3);
    client.close();
    // What housekeeping does past OUTBOX_RETENTION_HOURS, to everything up to the second event.
    await ctx.db().pool.query('DELETE FROM outbox WHERE delivered_seq <= $1', [Number(seen[1]!.id)]);
    const resumed = await openEvents(url, `?producto_id=${id}`, { 'last-event-id': seen[0]!.id! });
    const [gap, third] = await resumed.waitFor(2);
    resumed.close();
    expect(gap!.event).toBe('gap');
    expect(gap!.id).toBeUndefined();
    expect(JSON.parse(gap!.data)).toEqual({
      last_event_id: seen[0]!.id,
      oldest_event_id: expect.any(String),
    });
    expect(third!.id).toBe(seen[2]!.id);
  });

  it('numbers a batch in seq order, whatever order its ids are given in', async () => {
    const { rows } = await ctx.db().pool.query<{ id: string }>(
      `INSERT INTO outbox (type, producto_id, data)
       SELECT 'inventory.updated', 2147483000, jsonb_build_object('n', n) FROM generate_series(1, 300) n
       RETURNING id`,
    );
    // The relay may deliver them first; then they are numbered already and kept as they are.
    await markPublished(ctx.db().pool, rows.map((r) => r.id).reverse());
    const numbered = await ctx
      .db()
      .pool.query<{ seq: string; delivered: string }>(
        `SELECT seq::text AS seq, delivered_seq::text AS delivered FROM outbox WHERE producto_id = 2147483000 ORDER BY seq`,
      );
    const delivered = numbered.rows.map((r) => Number(r.delivered));
    expect(delivered).toHaveLength(300);
    expect([...delivered].sort((x, y) => x - y)).toEqual(delivered);
  });
});

describe('GET /api/events — bounds', () => {
  it('sends a comment line at the configured interval while nothing happens', async () => {
    const other = await instance({ EVENTS_HEARTBEAT_MS: '100' });
    const client = await openEvents(other.url);
    await until(() => client.comments >= 4, 5_000);
    client.close();
  });

  it('keeps a quiet stream open past the HTTP idle and request timeouts', async () => {
    const other = await instance({
      HTTP_IDLE_TIMEOUT_MS: '100',
      // Long enough that a slow moment of this busy machine does not refuse the request itself.
      HTTP_REQUEST_TIMEOUT_MS: '1000',
      HTTP_HEADERS_TIMEOUT_MS: '1000',
      REQUEST_TIMEOUT_MS: '300',
    });
    const id = await ctx.createProduct(1);
    const client = await openEvents(other.url, `?producto_id=${id}`);
    await new Promise((r) => setTimeout(r, 2_500));
    await setStock(id, 7);
    const [event] = await client.waitFor(1);
    client.close();
    expect(envelopeOf(event!).data.cantidad).toBe(7);
  });

  it('answers 503 with Retry-After beyond EVENTS_MAX_STREAMS, and has room again once one closes', async () => {
    const other = await instance({ EVENTS_MAX_STREAMS: '2', ...{ METRICS_CACHE_MS: '0' } });
    const open = [await openEvents(other.url), await openEvents(other.url)];
    expect(open.map((c) => c.status)).toEqual([200, 200]);
    expect(await metric(other.app, 'event_streams_open')).toBe(2);
    const refused = await openEvents(other.url);
    expectErrorDocumentOf(refused.status, refused.headers, refused.body, 503);
    expect(refused.headers['retry-after']).toBe('5');
    open[0]!.close();
    await until(async () => (await metric(other.app, 'event_streams_open')) === 1);
    const again = await openEvents(other.url);
    expect(again.status).toBe(200);
    again.close();
    open[1]!.close();
    await until(async () => (await metric(other.app, 'event_streams_open')) === 0);
    expect(await metric(other.app, 'event_streams_closed_total', { reason: 'client' })).toBe(3);
  });

  it('lets a slow client catch up at its pace, drops one that takes nothing, and the others get everything', async () => {
    const other = await instance({ EVENTS_BUFFER_BYTES: '65536', EVENTS_HEARTBEAT_MS: '500' });
    const PRODUCT = 2147483001;
    const reader = await openEvents(other.url, `?producto_id=${PRODUCT}`);
    // A client that sends its request and then never reads a byte.
    const stalled = connect({ host: '127.0.0.1', port: Number(new URL(other.url).port) });
    stalled.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nX-API-Key: ${API_KEY}\r\n\r\n`);
    stalled.pause();
    await until(async () => (await metric(other.app, 'event_streams_open')) === 2);
    // About 20 MiB of events: more than the socket buffers of both ends can hold, and far more than
    // EVENTS_BUFFER_BYTES, so the reader too falls behind and catches up from the database.
    const COUNT = 1_000;
    await ctx.db().pool.query(
      `INSERT INTO outbox (type, producto_id, data)
       SELECT 'inventory.updated', $1, jsonb_build_object('producto_id', $1::int, 'n', n, 'pad', repeat('x', 20000))
       FROM generate_series(1, $2::int) n`,
      [PRODUCT, COUNT],
    );
    await until(
      async () => (await metric(other.app, 'event_streams_closed_total', { reason: 'dropped' })) === 1,
      150_000,
    );
    const got = await reader.waitFor(COUNT, 150_000);
    reader.close();
    stalled.destroy();
    expect(got.map((m) => envelopeOf(m).data.n)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    expect(await metric(other.app, 'event_streams_open')).toBe(1);
    // 20 MiB through loopback takes seconds alone and over a minute beside the rest of the suite.
  }, 320_000);

  it('ends every stream cleanly on shutdown, and the server stops in time', async () => {
    const other = await instance({});
    const clients = [await openEvents(other.url), await openEvents(other.url, '?types=order.completed')];
    const started = performance.now();
    await other.app.close();
    expect(performance.now() - started).toBeLessThan(5_000);
    await Promise.all(clients.map((c) => c.ended));
  });
});

/** Asserts a JSON:API error answer read over raw HTTP. */
function expectErrorDocumentOf(
  status: number,
  headers: SseClient['headers'],
  body: string,
  expected: number,
  source?: Record<string, string>,
) {
  expect(status, body).toBe(expected);
  expect(headers['content-type']).toBe(JSONAPI);
  const { errors } = JSON.parse(body) as { errors: { status: string; source?: unknown }[] };
  expect(errors[0]!.status).toBe(String(expected));
  if (source) expect(errors.map((e) => e.source)).toContainEqual(source);
}
