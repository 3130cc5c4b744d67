/**
 * The Products client's policy on its own, against a fake server: which failures are retried, how
 * the breaker moves between closed, open and half-open (and tells its listeners), and that an open
 * circuit fails fast without a request.
 */
import { Deadline } from '@catalogo/kit/deadline';
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

async function setup(
  behaviour: FakeBehaviour,
  config: Partial<ProductsClientConfig> = {},
  tuning: { batchStallMs?: number } = {},
) {
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
    tuning,
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

describe('getProductBatched: the products of purchases that arrive together, in one request', () => {
  /** Holds the fake's answers open until `release()`: a request in flight, priced when it arrived. */
  function holdAnswers(server: FakeProducts) {
    let release!: () => void;
    server.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      server.hold = undefined;
      release();
    };
  }

  // A request held open is not slow: the purchases that arrive meanwhile wait for it, however long.
  const holding = () => setup('ok', {}, { batchStallMs: 60_000 });

  const arrived = (server: FakeProducts, count: number) =>
    expect.poll(() => server.requests.length, { timeout: 10_000 }).toBe(count);

  it('alone, it is a single read, as getProduct makes', async () => {
    const { server, client } = await setup('ok');
    server.prices.set(5, 0.1);
    expect(await client.getProductBatched(5, 'r')).toEqual(fakeProduct(5, 0.1));
    expect(await client.getProductBatched(6, 'r')).toBeUndefined();
    expect(server.requests.map((r) => r.url)).toEqual(['/api/products/5', '/api/products/6']);
  });

  it('a price changed just before a purchase arrives is the price it gets, never one read before', async () => {
    const { server, client } = await holding();
    server.prices.set(1, 10);
    const release = holdAnswers(server);
    const first = client.getProductBatched(1, 'r1');
    // The first request has read its price (10) and is in flight when the price changes.
    await arrived(server, 1);
    server.prices.set(1, 20);
    const second = client.getProductBatched(1, 'r2');
    release();
    expect((await first)?.attributes.precio).toBe(10);
    expect((await second)?.attributes.precio).toBe(20);
    expect(server.requests).toHaveLength(2);
  });

  it('those that arrive while a request is in flight share the next one (filter[id], each id once)', async () => {
    const { server, client } = await holding();
    for (const id of [1, 2, 3]) server.prices.set(id, id);
    const release = holdAnswers(server);
    const first = client.getProductBatched(1, 'r1');
    await arrived(server, 1);
    const together = [2, 3, 2, 9].map((id) => client.getProductBatched(id, `r-${id}`));
    release();
    await first;
    const products = await Promise.all(together);
    expect(products.map((p) => p?.attributes.precio)).toEqual([2, 3, 2, undefined]);
    expect(server.requests).toHaveLength(2);
    expect(decodeURIComponent(server.requests[1]!.url)).toBe('/api/products?filter[id]=2,3,9&page[size]=3');
    expect(server.requests[1]!.headers['x-request-id']).toBe('r-2');
  });

  it('an order’s products go in one request, shared with the purchases and orders that arrive with it', async () => {
    const { server, client } = await holding();
    for (const id of [1, 2, 3, 4, 5]) server.prices.set(id, id);
    expect([...(await client.getProducts([3, 1, 9], 'order')).keys()]).toEqual([3, 1]);
    expect(decodeURIComponent(server.requests[0]!.url)).toBe('/api/products?filter[id]=3,1,9&page[size]=3');
    const release = holdAnswers(server);
    const first = client.getProductBatched(1, 'r1');
    await arrived(server, 2);
    const order = client.getProducts([2, 3], 'order');
    const purchase = client.getProductBatched(4, 'r2');
    const other = client.getProducts([4, 5], 'other');
    release();
    await first;
    expect([...(await order).keys()]).toEqual([2, 3]);
    expect((await purchase)?.attributes.precio).toBe(4);
    expect([...(await other).keys()]).toEqual([4, 5]);
    expect(server.requests).toHaveLength(3);
    expect(decodeURIComponent(server.requests[2]!.url)).toBe('/api/products?filter[id]=2,3,4,5&page[size]=4');
  });

  it('a purchase whose deadline passed while it waited is answered 503 and its product not asked for', async () => {
    const { server, client } = await holding();
    for (const id of [1, 2, 3]) server.prices.set(id, id);
    const release = holdAnswers(server);
    const first = client.getProductBatched(1, 'r1');
    await arrived(server, 1);
    const late = client.getProductBatched(2, 'r2', new Deadline(50)).catch((err: unknown) => err);
    expect(await late).toMatchObject({ code: 'deadline_exceeded' });
    const next = client.getProductBatched(3, 'r3');
    release();
    await first;
    expect((await next)?.attributes.precio).toBe(3);
    expect(server.requests.map((r) => r.url)).toEqual(['/api/products/1', '/api/products/3']);
  });

  it('a product Inventory refuses fails its own purchases only (503); the others are answered', async () => {
    const { server, client } = await holding();
    server.prices.set(2, 2);
    server.documents.set(3, {
      data: { ...fakeProduct(3, 1), attributes: { ...fakeProduct(3, 1).attributes, precio: 1.005 } },
    });
    const release = holdAnswers(server);
    const first = client.getProductBatched(2, 'r1');
    await arrived(server, 1);
    const [good, refused, missing] = [2, 3, 4].map((id) => client.getProductBatched(id, 'r'));
    release();
    await first;
    expect((await good!)?.attributes.precio).toBe(2);
    const error = await refused!.catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(503);
    expect(await missing!).toBeUndefined();
    expect(server.requests).toHaveLength(2);
  });

  it('an answer with a product not asked for is refused whole: 503 for each purchase of the request', async () => {
    const { server, client } = await holding();
    server.prices.set(2, 2);
    server.documents.set(3, { data: fakeProduct(30, 1) });
    const release = holdAnswers(server);
    const first = client.getProductBatched(2, 'r1');
    await arrived(server, 1);
    const together = [2, 3].map((id) => client.getProductBatched(id, 'r').catch((err: unknown) => err));
    release();
    await first;
    for (const error of await Promise.all(together)) expect((error as AppError).status).toBe(503);
  });

  it('Products down: 503 for every purchase of the request, after the same retries as a single read', async () => {
    const { server, client } = await setup(503);
    const errors = await Promise.all(
      [1, 2, 3].map((id) => client.getProductBatched(id, 'r').catch((err: unknown) => err)),
    );
    for (const error of errors) {
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).message).toBe(UNAVAILABLE);
    }
    // The first alone (3 attempts), the other two together (3 attempts).
    expect(server.requests).toHaveLength(6);
  });

  it('an open circuit fails them at once, without a request', async () => {
    const { server, client } = await setup(503, { breakerThreshold: 2, breakerHalfOpenMs: 60_000 });
    await unavailable(client);
    expect(client.breakerState()).toBe('open');
    const calls = server.requests.length;
    server.behaviour = 'hang';
    const errors = await Promise.all(
      [1, 2, 3].map((id) => client.getProductBatched(id, 'r').catch((err: unknown) => err)),
    );
    for (const error of errors) expect((error as AppError).status).toBe(503);
    expect(server.requests).toHaveLength(calls);
  });

  it('each purchase is answered by its own deadline when Products hangs, the request by the latest', async () => {
    const { client } = await setup('hang', { timeoutMs: 5_000 });
    const started = performance.now();
    const settled = await Promise.all(
      [200, 600].map((ms) =>
        client.getProductBatched(1, 'r', new Deadline(ms)).then(
          () => undefined,
          (err: unknown) => ({ err, after: performance.now() - started }),
        ),
      ),
    );
    for (const outcome of settled) expect(outcome).toMatchObject({ err: { code: 'deadline_exceeded' } });
    // Generous bounds for a busy machine: each well before the 5 s timeout, the first before the second.
    expect(settled[0]!.after).toBeLessThan(settled[1]!.after);
    expect(settled[1]!.after).toBeLessThan(3_000);
  });
});
