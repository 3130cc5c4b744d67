/**
 * The Products client's policy on its own, against a fake server: which failures are retried, how
 * the breaker moves between closed, open and half-open (and tells its listeners), and that an open
 * circuit fails fast without a request.
 */
import { AppError } from '@catalogo/kit/errors';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProductsClientConfig } from '../src/config.js';
import {
  createProductsClient,
  MAX_PRODUCT_RESPONSE_BYTES,
  type ProductsClient,
} from '../src/products-client.js';
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

  it('goes through the breaker: while the circuit is open it fails without a call', async () => {
    const { server, client } = await setup(503, { breakerThreshold: 2, breakerHalfOpenMs: 60_000 });
    await unavailable(client);
    expect(client.breakerState()).toBe('open');
    const calls = server.requests.length;
    server.behaviour = 'ok';
    await expect(client.ping()).rejects.toThrow();
    expect(server.requests).toHaveLength(calls);
  });
});

describe('what Products answers is checked before it is sold or shown', () => {
  /** A logger whose warnings land in `warnings`. */
  function capture() {
    const warnings: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
    );
    return { warnings, logger };
  }

  async function serving(document: unknown, logger = log) {
    const server = await startFakeProducts('ok');
    const client = createProductsClient(
      {
        url: server.url,
        apiKey: 'k',
        timeoutMs: 2_000,
        attempts: 3,
        breakerThreshold: 100,
        breakerHalfOpenMs: 100,
        connections: 2,
      },
      logger,
    );
    cleanup.push(server.close, client.close);
    server.documents.set(7, document);
    return { server, client };
  }

  const product = (attributes: Record<string, unknown>, id = '7') => ({
    data: { ...fakeProduct(7, 1), id, attributes: { ...fakeProduct(7, 1).attributes, ...attributes } },
  });

  it('keeps only the product’s own members, whatever else Products sends', async () => {
    const { client } = await serving({
      data: {
        ...fakeProduct(7, 12.5),
        attributes: { ...fakeProduct(7, 12.5).attributes, coste_interno: 3, html: '<script>' },
        meta: { secreto: true },
        relationships: { proveedor: { data: { type: 'x', id: '1' } } },
      },
      included: [{ type: 'x', id: '1' }],
    });
    expect(await client.getProduct(7, 'r')).toEqual(fakeProduct(7, 12.5));
  });

  it.each([
    ['another product', product({}, '8'), /another product/],
    ['a price with three decimals', product({ precio: 12.345 }), /precio: 12.345/],
    ['a price below a cent', product({ precio: 0.001 }), /precio: 0.001/],
    ['a price of 0', product({ precio: 0 }), /precio: 0/],
    ['a negative price', product({ precio: -5 }), /precio: -5/],
    ['a price over 99999999.99', product({ precio: 100_000_000 }), /precio: 100000000/],
    ['a price in exponent form', product({ precio: 1e-7 }), /precio: 1e-7/],
    ['a price sent as text', product({ precio: '12.50' }), /precio: 12.50/],
    ['no name', product({ nombre: undefined }), /nombre/],
    ['a timestamp that is not one', product({ updated_at: 'ayer' }), /updated_at/],
    ['no product at all', { data: null }, /no product/],
    ['a bare string instead of a document', 'no es un documento', /no product/],
  ])('refuses %s with a 503, once, logging the reason at warn', async (_label, document, reason) => {
    const { warnings, logger } = capture();
    const { server, client } = await serving(document, logger);
    await unavailable(client, 7);
    expect(server.requests).toHaveLength(1);
    const warning = warnings.find((line) => line.msg === 'refused the product Products answered');
    expect(warning).toMatchObject({ level: 40, productId: 7 });
    expect(String(warning?.reason)).toMatch(reason);
  });

  it('accepts every price the column holds, exactly', async () => {
    for (const precio of [0.01, 0.1, 1, 12.35, 99_999_999.99]) {
      const { client } = await serving(product({ precio }));
      expect((await client.getProduct(7, 'r'))?.attributes.precio).toBe(precio);
    }
  });

  it('checks every product of a filter[id] answer as it checks a single one', async () => {
    const { warnings, logger } = capture();
    const { server, client } = await serving(undefined, logger);
    server.prices.set(7, 12.5);
    server.prices.set(8, 12.345);
    expect((await client.getProducts([7], 'r')).get(7)?.attributes.precio).toBe(12.5);
    const error = await client.getProducts([7, 8], 'r').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(503);
    const warning = warnings.find((line) => line.msg === 'refused the product Products answered');
    expect(String(warning?.reason)).toMatch(/precio: 12.345/);
  });

  it(`stops reading an answer past ${MAX_PRODUCT_RESPONSE_BYTES / 1024} KiB: 503 at once, not retried`, async () => {
    const { warnings, logger } = capture();
    const { server, client } = await serving(undefined, logger);
    server.behaviour = 'huge';
    const before = process.memoryUsage().rss;
    await unavailable(client, 7);
    expect(server.requests).toHaveLength(1);
    expect(warnings.find((line) => line.msg === 'refused the product Products answered')).toBeDefined();
    // Generous: the 50 MB answer is not held, whatever else the process allocates meanwhile.
    expect(process.memoryUsage().rss - before).toBeLessThan(40 * 1024 * 1024);
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
