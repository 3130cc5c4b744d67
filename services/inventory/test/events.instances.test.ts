/**
 * GET /api/events with three Inventory instances on one database: a client connected to any
 * instance sees the events committed through every instance, in one order, within a second.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createProductIn, purchaseBody, setBody, useInstances } from './helpers.js';
import { envelopeOf, openEvents, type SseClient } from './sse.js';

const N = 3;
// The relay and the reader at their defaults: the latency measured is the one a client gets.
const ctx = useInstances(N);
const urls: string[] = [];

beforeAll(() => {
  for (let i = 0; i < N; i++) {
    const { port } = ctx.app(i).server.address() as AddressInfo;
    urls.push(`http://127.0.0.1:${port}`);
  }
});

const clients: SseClient[] = [];
afterAll(() => {
  for (const client of clients) client.close();
});

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

it('delivers an event committed through one instance to clients of every instance within 1 s', async () => {
  const id = await createProductIn(ctx.products().app, 2.5);
  const PURCHASES = 30;
  expect(
    (await ctx.call(0, 'PATCH', `/api/inventory/${id}`, setBody(id, { cantidad: PURCHASES }))).status,
  ).toBe(200);
  for (const url of urls) clients.push(await openEvents(url, `?producto_id=${id}&types=purchase.completed`));

  // One purchase at a time, each through the next instance; its commit happens after `sent`.
  const sent = new Map<string, number>();
  for (let n = 0; n < PURCHASES; n++) {
    const started = performance.now();
    const res = await ctx.call(n, 'POST', '/api/purchases', purchaseBody(id, 1));
    expect(res.status).toBe(201);
    sent.set(res.body.data.id, started);
    // Spaced out, so that each is measured on its own rather than in a batch behind the others.
    await new Promise((r) => setTimeout(r, 50));
  }
  const received = await Promise.all(clients.map((client) => client.waitFor(PURCHASES, 20_000)));

  // Every instance sends the same events, with the same ids, in the same order.
  const ids = received.map((messages) => messages.map((m) => m.id));
  expect(ids[1]).toEqual(ids[0]);
  expect(ids[2]).toEqual(ids[0]);
  expect(new Set(received[0]!.map((m) => envelopeOf(m).data.purchase_id))).toEqual(new Set(sent.keys()));

  // From the request's start (before its commit) to the event's arrival: an upper bound of the delay.
  const latencies = received
    .flatMap((messages) => messages.map((m) => m.at - sent.get(envelopeOf(m).data.purchase_id as string)!))
    .sort((a, b) => a - b);
  const summary = {
    n: latencies.length,
    p50: Math.round(percentile(latencies, 0.5)),
    p90: Math.round(percentile(latencies, 0.9)),
    p99: Math.round(percentile(latencies, 0.99)),
    max: Math.round(latencies.at(-1)!),
  };
  console.log(`event latency across ${N} instances, ms from request start: ${JSON.stringify(summary)}`);
  expect(summary.p90).toBeLessThan(1_000);
}, 60_000);
