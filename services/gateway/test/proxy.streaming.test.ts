/**
 * `/api/events` through the gateway: a stand-in service sends server-sent events over time, and
 * the client must see each one as it is sent (nothing buffered), past the upstream timeout (a
 * stream has no end), resuming from `Last-Event-ID`; a client that hangs up closes the service's
 * stream too.
 */
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Gateway, type Stub, startGateway, startStub } from './helpers.js';

/** Longer than the gateway's upstream timeout below, so a stream that respected it would be cut. */
const GAP_MS = 600;
const UPSTREAM_TIMEOUT_MS = 300;

let inventory: Stub;
let gateway: Gateway;
const open = new Set<ServerResponse>();
let closed = 0;

beforeAll(async () => {
  inventory = await startStub((req, res) => {
    const from = Number(req.headers['last-event-id'] ?? 0);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-request-id': String(req.headers['x-request-id']),
    });
    open.add(res);
    res.on('close', () => {
      open.delete(res);
      closed += 1;
    });
    let id = from;
    const send = () => {
      id += 1;
      res.write(`id: ${id}\nevent: inventory.updated\ndata: {"n":${id}}\n\n`);
      if (id === from + 3) {
        clearInterval(timer);
        res.end();
      }
    };
    res.write(': connected\n\n');
    const timer = setInterval(send, GAP_MS);
    res.on('close', () => clearInterval(timer));
  });
  gateway = await startGateway(
    { products: inventory.url, inventory: inventory.url },
    { UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) },
  );
});

afterAll(async () => {
  await gateway?.close();
  await inventory?.close();
});

it('each event reaches the client as it is sent, past the upstream timeout, from Last-Event-ID on', async () => {
  const started = performance.now();
  const res = await fetch(`${gateway.url}/api/events?topics=inventory`, {
    headers: { 'x-api-key': 'k', accept: 'text/event-stream', 'last-event-id': '41' },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  expect(res.headers.get('cache-control')).toBe('no-cache');
  expect(inventory.requests.at(-1)).toMatchObject({
    url: '/api/events?topics=inventory',
    headers: { 'last-event-id': '41', accept: 'text/event-stream' },
  });

  // Each event is read with the clock: the n-th arrives about n gaps after the start, while the
  // stream is still open, never all together at its end.
  const arrivals: Array<{ id: string; at: number }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (\d+)$/m.exec(message)?.[1];
      if (id) arrivals.push({ id, at: performance.now() - started });
    }
  }
  expect(arrivals.map((a) => a.id)).toEqual(['42', '43', '44']);
  // The first event came well before the last was sent (≥ 2 gaps later): nothing was held back.
  expect(arrivals[2]!.at - arrivals[0]!.at).toBeGreaterThanOrEqual(GAP_MS * 1.5);
});

it('a client that hangs up ends the service’s stream', async () => {
  const before = closed;
  const controller = new AbortController();
  const res = await fetch(`${gateway.url}/api/events`, {
    headers: { 'x-api-key': 'k' },
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  expect(open.size).toBe(1);
  controller.abort();
  const deadline = Date.now() + 10_000;
  while (closed === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(closed).toBe(before + 1);
  expect(open.size).toBe(0);
});

it('other routes keep their timeout: a service silent past it is a 503', async () => {
  inventory.handle = () => {};
  const res = await fetch(`${gateway.url}/api/orders`, { headers: { 'x-api-key': 'k' } });
  expect(res.status).toBe(503);
  const body = (await res.json()) as { errors: Array<{ code: string }> };
  expect(body.errors[0]!.code).toBe('upstream_timeout');
});
