/**
 * The Products client's policy on its own, against a fake server: which failures are retried, how
 * the breaker moves between closed, open and half-open (and tells its listeners), and that an open
 * circuit fails fast without a request.
 */
import { AppError } from '@catalogo/kit/errors';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProductsClientConfig } from '../src/config.js';
import { createProductsClient, type ProductsClient } from '../src/products-client.js';
import {
  closedPort,
  type FakeBehaviour,
  type FakeProducts,
  fakeProduct,
  startFakeProducts,
  UNAVAILABLE,
} from './helpers.js';

const log = pino({ level: 'silent' });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function setup(behaviour: FakeBehaviour, config: Partial<ProductsClientConfig> = {}) {
  const server = await startFakeProducts(behaviour);
  const client = createProductsClient(
    {
      url: server.url,
      apiKey: 'k',
      timeoutMs: 150,
      attempts: 3,
      breakerThreshold: 100,
      breakerHalfOpenMs: 100,
      connections: 4,
      ...config,
    },
    log,
  );
  cleanup.push(server.close, client.close);
  return { server, client };
}

async function unavailable(client: ProductsClient, id = 1): Promise<AppError> {
  const error = await client.getProduct(id, 'req-1').then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).status).toBe(503);
  expect((error as AppError).message).toBe(UNAVAILABLE);
  return error as AppError;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('getProduct', () => {
  it('returns the resource object untouched, and undefined for a 404', async () => {
    const { server, client } = await setup('ok');
    server.prices.set(5, 0.1);
    expect(await client.getProduct(5, 'r')).toEqual(fakeProduct(5, 0.1));
    expect(await client.getProduct(6, 'r')).toBeUndefined();
    expect(server.requests).toHaveLength(2);
  });

  it.each<[FakeBehaviour, number]>([
    [503, 3],
    [502, 3],
    [504, 3],
    ['reset', 3],
    ['hang', 3],
    [500, 1],
    [401, 1],
    [404, 1],
    ['garbage', 1],
  ])('%s: %s attempt(s)', async (behaviour, attempts) => {
    const { server, client } = await setup(behaviour);
    if (behaviour === 404) expect(await client.getProduct(1, 'r')).toBeUndefined();
    else await unavailable(client);
    expect(server.requests).toHaveLength(attempts);
  });

  it('recovers when a retry succeeds', async () => {
    const { server, client } = await setup('ok');
    server.prices.set(9, 3);
    server.script = [503, 'reset'];
    expect(await client.getProduct(9, 'r')).toEqual(fakeProduct(9, 3));
    expect(server.requests).toHaveLength(3);
  });

  it('answers 503 for a server that is not there', async () => {
    const port = await closedPort();
    const client = createProductsClient(
      {
        url: `http://127.0.0.1:${port}`,
        apiKey: 'k',
        timeoutMs: 150,
        attempts: 2,
        breakerThreshold: 100,
        breakerHalfOpenMs: 100,
        connections: 1,
      },
      log,
    );
    cleanup.push(client.close);
    await unavailable(client);
  });
});

describe('circuit breaker', () => {
  it('opens after the threshold of failed attempts, fails fast, and closes after a good probe', async () => {
    // A pause the five calls below cannot outlast, even on a loaded machine.
    const { server, client } = await setup(503, { breakerThreshold: 3, breakerHalfOpenMs: 1_500 });
    const changes: string[] = [];
    client.onBreakerChange((state) => changes.push(state));
    expect(client.breakerState()).toBe('closed');

    await unavailable(client);
    expect(client.breakerState()).toBe('open');
    expect(server.requests).toHaveLength(3);

    // Failing fast is answering without a request: one let through would now hang until its timeout.
    server.behaviour = 'hang';
    for (let i = 0; i < 5; i++) await unavailable(client);
    expect(server.requests).toHaveLength(3);

    server.behaviour = 'ok';
    server.prices.set(1, 2);
    await sleep(1_550);
    expect(await client.getProduct(1, 'r')).toEqual(fakeProduct(1, 2));
    expect(client.breakerState()).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it('does not count a 404 or a non-transient failure towards opening', async () => {
    const { server, client } = await setup(404, { breakerThreshold: 2 });
    for (let i = 0; i < 3; i++) expect(await client.getProduct(1, 'r')).toBeUndefined();
    server.behaviour = 500;
    for (let i = 0; i < 3; i++) await unavailable(client);
    expect(client.breakerState()).toBe('closed');
    expect(server.requests).toHaveLength(6);
  });

  it('a success resets the count of consecutive failures', async () => {
    const { server, client } = await setup('ok', { breakerThreshold: 2, attempts: 1 });
    server.prices.set(1, 2);
    for (let i = 0; i < 3; i++) {
      server.behaviour = 503;
      await unavailable(client);
      server.behaviour = 'ok';
      await client.getProduct(1, 'r');
    }
    expect(client.breakerState()).toBe('closed');
  });
});

describe('ping', () => {
  it('resolves while Products is healthy and rejects otherwise', async () => {
    const { server, client } = await setup('ok');
    await expect(client.ping()).resolves.toBeUndefined();
    server.behaviour = 503;
    await expect(client.ping()).rejects.toThrow();
  });
});

describe('with a fake server whose requests we inspect', () => {
  it('sends the key, the request id and the JSON:API Accept', async () => {
    const { server, client }: { server: FakeProducts; client: ProductsClient } = await setup('ok');
    await client.getProduct(3, 'the-request');
    expect(server.requests[0]!.headers).toMatchObject({
      'x-api-key': 'k',
      'x-request-id': 'the-request',
      accept: 'application/vnd.api+json',
    });
  });
});
