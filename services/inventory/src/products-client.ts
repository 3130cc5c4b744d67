import { EventEmitter } from 'node:events';
import { type Deadline, deadlineExceeded, withDeadline } from '@catalogo/kit/deadline';
import { AppError, serviceUnavailable } from '@catalogo/kit/errors';
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  decorrelatedJitterGenerator,
  ExponentialBackoff,
  handleWhen,
  retry,
  wrap,
} from 'cockatiel';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import type { ProductsClientConfig } from './config.js';
import { createProductBatcher, type FetchedProducts } from './products-client.batcher.js';

/**
 * The product as the Products service returned it, rebuilt from its checked members only: it is
 * priced from and shown to clients in `included`, so nothing else Products sends goes through.
 */
export interface ProductResource {
  type: 'products';
  id: string;
  attributes: {
    nombre: string;
    precio: number;
    descripcion: string | null;
    created_at: string;
    updated_at: string;
  };
  links: { self: string };
}

/** A failure that may succeed on retry: connection errors, timeouts, 502/503/504. */
class TransientProductsError extends Error {
  override name = 'TransientProductsError';
}

/** Products answered 200 with a product Inventory must not sell or show; retrying changes nothing. */
class RefusedProductError extends Error {
  override name = 'RefusedProductError';
}

/**
 * The largest answer read from Products, per product asked for. A product is at most a few
 * kilobytes (a 255-character name, a 5000-character description); a 50 MB answer read whole took
 * 150 MB per purchase.
 */
export const MAX_PRODUCT_RESPONSE_BYTES = 64 * 1024;
/** The most products one `filter[id]` request asks for: an order's or a reservation's lines. */
const MAX_PRODUCTS_PER_REQUEST = 100;
const TOO_LARGE = 'UND_ERR_RES_EXCEEDED_MAX_SIZE';
/**
 * A shared product request in flight for longer than this no longer holds back the next one: a
 * cached read answers within a millisecond or two, so a request this old is slow or retrying.
 */
const BATCH_STALL_MS = 20;

/** The body as text, or a RefusedProductError as soon as it outgrows `limit` bytes (the rest is not read). */
async function readAtMost(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new RefusedProductError(`the answer outgrew ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const RETRYABLE_STATUSES = new Set([502, 503, 504]);
const UNAVAILABLE = 'Servicio de productos no disponible';

const isTransient = (err: Error) => err instanceof TransientProductsError || isConnectionError(err);

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === 'string' && code !== TOO_LARGE && (code.startsWith('UND_ERR') || code.startsWith('E'))
  );
}

/** A price the `precio` column holds: positive, at most two decimals, at most 99999999.99. */
const PRICE = /^\d{1,8}(\.\d{1,2})?$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

const isTimestamp = (value: unknown): value is string => typeof value === 'string' && TIMESTAMP.test(value);

/**
 * The product resource `value`, one of `ids`, rebuilt from its checked members, or a
 * RefusedProductError naming what is wrong: another product than one asked for, or a price
 * that would be charged other than as stated (12.345 was charged 12.35; 0.001 made a 500).
 */
function productFrom(value: unknown, ids: ReadonlySet<number>): ProductResource {
  const data = value as { type?: unknown; id?: unknown; attributes?: Record<string, unknown> } | undefined;
  const attributes = data?.attributes;
  if (data?.type !== 'products' || typeof attributes !== 'object' || attributes === null) {
    throw new RefusedProductError('no product resource in the document');
  }
  const id = Number(data.id);
  if (typeof data.id !== 'string' || data.id !== String(id) || !ids.has(id)) {
    throw new RefusedProductError(`another product's id than those asked for: ${String(data.id)}`);
  }
  const { nombre, precio, descripcion, created_at, updated_at } = attributes;
  if (typeof precio !== 'number' || !PRICE.test(String(precio)) || precio <= 0) {
    throw new RefusedProductError(`invalid precio: ${String(precio)}`);
  }
  if (typeof nombre !== 'string' || nombre.length === 0 || nombre.length > 255) {
    throw new RefusedProductError('invalid nombre');
  }
  if (descripcion != null && (typeof descripcion !== 'string' || descripcion.length > 5000)) {
    throw new RefusedProductError('invalid descripcion');
  }
  if (!isTimestamp(created_at) || !isTimestamp(updated_at)) {
    throw new RefusedProductError('invalid created_at or updated_at');
  }
  return {
    type: 'products',
    id: data.id,
    attributes: { nombre, precio, descripcion: descripcion ?? null, created_at, updated_at },
    links: { self: `/api/products/${id}` },
  };
}

export interface ProductsClient {
  /**
   * The product, or undefined when the Products service says it does not exist (404). With a
   * deadline, no attempt outlasts it and none starts past it: the request's 503 comes in time.
   */
  getProduct(id: number, requestId: string, deadline?: Deadline): Promise<ProductResource | undefined>;
  /**
   * Several products (at most 100) in one request (`filter[id]`), by id, begun after this call and
   * possibly shared as `getProductBatched`'s are; an id the Products service does not know is absent
   * from the answer, and one product refused fails them all (503). The deadline bounds it as it
   * does `getProduct`.
   */
  getProducts(ids: number[], requestId: string, deadline?: Deadline): Promise<Map<number, ProductResource>>;
  /**
   * The product as `getProduct` answers it, from a request that started after this call and may ask
   * for the products of other callers too (`filter[id]`): a purchase's price, never read before the
   * purchase arrived. A product Inventory refuses fails its own callers only (503).
   */
  getProductBatched(id: number, requestId: string, deadline?: Deadline): Promise<ProductResource | undefined>;
  /**
   * Whether the Products service answers its health check (reported, never fatal); fails at once
   * while the circuit is open.
   */
  ping(): Promise<void>;
  breakerState(): 'closed' | 'open' | 'half-open';
  onBreakerChange(listener: (state: 'closed' | 'open' | 'half-open') => void): void;
  close(): Promise<void>;
}

const STATE_NAMES = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
} as const;

/**
 * HTTP client of the Products service: a keep-alive connection pool, a timeout per attempt,
 * retries with decorrelated-jitter backoff for failures that can pass, and a circuit breaker that
 * answers at once while the service is down, letting one probe through after a pause.
 */
export function createProductsClient(
  config: ProductsClientConfig,
  log: Logger,
  { batchStallMs = BATCH_STALL_MS }: { batchStallMs?: number } = {},
): ProductsClient {
  const origin = new URL(config.url);
  const basePath = origin.pathname.replace(/\/$/, '');
  const pool = new Pool(origin.origin, {
    connections: config.connections,
    keepAliveTimeout: 30_000,
    // Cuts the connection once an answer outgrows the largest any request may read, whatever its
    // Content-Length says; each request reads at most its own share (readAtMost).
    maxResponseSize: MAX_PRODUCTS_PER_REQUEST * MAX_PRODUCT_RESPONSE_BYTES,
  });

  // Retry (outermost) sees each attempt fail; the breaker counts failed attempts; each attempt has
  // its own timeout (fetchOnce). An open circuit is not retried: that is what makes it answer at once.
  const retryPolicy = retry(handleWhen(isTransient), {
    maxAttempts: config.attempts - 1,
    backoff: new ExponentialBackoff({
      generator: decorrelatedJitterGenerator,
      initialDelay: 50,
      maxDelay: 400,
    }),
  });
  const breaker = circuitBreaker(handleWhen(isTransient), {
    halfOpenAfter: config.breakerHalfOpenMs,
    breaker: new ConsecutiveBreaker(config.breakerThreshold),
  });
  const policy = wrap(retryPolicy, breaker);

  retryPolicy.onRetry((event) =>
    log.warn({ attempt: event.attempt, delayMs: event.delay }, 'retrying Products call'),
  );
  breaker.onStateChange((state) =>
    log.warn({ state: STATE_NAMES[state] }, 'Products circuit breaker changed state'),
  );

  /**
   * One attempt, bounded by the timeout: when it expires the attempt fails at once (a transient
   * failure, retried) and its request is cancelled. The bound is the timer's own, not undici's: a
   * request still queued for a pooled connection only notices an abort once it is written. undici
   * takes an EventEmitter as the abort signal: an AbortSignal per attempt (cockatiel's timeout
   * policy) cost ~50 µs of CPU per purchase, as much as the request itself; this costs a few.
   */
  function fetchOnce<T>(request: (signal: EventEmitter) => Promise<T>, deadline: Deadline | undefined) {
    const left = deadline?.remaining() ?? Number.POSITIVE_INFINITY;
    // Out of the request's time: not a failure of Products, so neither retried nor counted by the breaker.
    if (left <= 0) throw deadlineExceeded();
    const cut = left < config.timeoutMs;
    const cancel = new EventEmitter();
    return withDeadline(request(cancel), cut ? left : config.timeoutMs, () => {
      cancel.emit('abort');
      if (cut) return deadlineExceeded();
      return new TransientProductsError(`Products did not answer within ${config.timeoutMs} ms`);
    });
  }

  /** One GET of `path`: its JSON body's `data` on 200, undefined on 404, an error otherwise. */
  async function requestData(path: string, products: number, requestId: string, signal: EventEmitter) {
    const response = await pool.request({
      method: 'GET',
      path: `${basePath}${path}`,
      headers: { 'x-api-key': config.apiKey, accept: 'application/vnd.api+json', 'x-request-id': requestId },
      signal,
    });
    const body = await readAtMost(response.body, products * MAX_PRODUCT_RESPONSE_BYTES);
    if (response.statusCode === 404) return undefined;
    if (RETRYABLE_STATUSES.has(response.statusCode)) {
      throw new TransientProductsError(`Products answered ${response.statusCode}`);
    }
    if (response.statusCode !== 200) {
      // 401 (a wrong PRODUCTS_API_KEY) or another answer that a retry cannot change.
      throw new Error(`Products answered ${response.statusCode}: ${body.slice(0, 200)}`);
    }
    let document: unknown;
    try {
      document = JSON.parse(body);
    } catch {
      throw new RefusedProductError('the answer is not JSON');
    }
    if (typeof document !== 'object' || document === null || !('data' in document)) {
      throw new RefusedProductError('no product resource in the document');
    }
    return document.data;
  }

  async function requestProduct(id: number, requestId: string, signal: EventEmitter) {
    const data = await requestData(`/api/products/${id}`, 1, requestId, signal);
    return data === undefined ? undefined : productFrom(data, new Set([id]));
  }

  /**
   * Several products in one request, each judged on its own: a product refused (an invalid price,
   * say) is that product's error in the map, not the request's. An entry that cannot be told apart
   * (no id, or one not asked for) makes the whole answer suspect.
   */
  async function requestEach(ids: number[], requestId: string, signal: EventEmitter) {
    const data = await requestData(
      `/api/products?filter[id]=${ids.join(',')}&page[size]=${ids.length}`,
      ids.length,
      requestId,
      signal,
    );
    if (!Array.isArray(data)) throw new RefusedProductError('no collection of products in the document');
    const wanted = new Set(ids);
    const found: FetchedProducts<ProductResource> = new Map();
    for (const value of data) {
      const raw = (value as { id?: unknown } | null)?.id;
      const id = Number(raw);
      if (typeof raw !== 'string' || raw !== String(id) || !wanted.has(id)) {
        throw new RefusedProductError(`another product's id than those asked for: ${String(raw)}`);
      }
      if (found.has(id)) {
        found.set(id, new RefusedProductError('the same product twice in the answer'));
        continue;
      }
      try {
        found.set(id, productFrom(value, wanted));
      } catch (err) {
        if (!(err instanceof RefusedProductError)) throw err;
        found.set(id, err);
      }
    }
    return found;
  }

  /** A call through the policy; any failure to get an answer is a 503 for the client. */
  async function call<T>(
    request: (signal: EventEmitter) => Promise<T>,
    deadline: Deadline | undefined,
    context: Record<string, unknown>,
  ) {
    try {
      return await policy.execute(() => fetchOnce(request, deadline));
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof BrokenCircuitError) log.debug('Products circuit open: failing fast');
      else if (err instanceof RefusedProductError || (err as { code?: unknown }).code === TOO_LARGE) {
        log.warn({ ...context, reason: (err as Error).message }, 'refused the product Products answered');
      } else log.error({ err, ...context }, 'Products service call failed');
      throw serviceUnavailable(UNAVAILABLE, err);
    }
  }

  /** One request for the products of `ids`: a single read for one, `filter[id]` for several. */
  async function fetchBatch(ids: number[], requestId: string, deadline: Deadline | undefined) {
    if (ids.length === 1) {
      const id = ids[0]!;
      const product = await call((signal) => requestProduct(id, requestId, signal), deadline, {
        productId: id,
      });
      return new Map(product ? [[id, product]] : []);
    }
    const found = await call((signal) => requestEach(ids, requestId, signal), deadline, { productIds: ids });
    for (const [productId, product] of found) {
      if (!(product instanceof Error)) continue;
      log.warn({ productId, reason: product.message }, 'refused the product Products answered');
      found.set(productId, serviceUnavailable(UNAVAILABLE, product));
    }
    return found;
  }

  const batcher = createProductBatcher(fetchBatch, {
    maxBatch: MAX_PRODUCTS_PER_REQUEST,
    stallMs: batchStallMs,
    maxInFlight: Math.max(1, config.connections),
  });

  return {
    getProductBatched: batcher.get,
    getProduct: (id, requestId, deadline) =>
      call((signal) => requestProduct(id, requestId, signal), deadline, { productId: id }),
    async getProducts(ids, requestId, deadline) {
      // Through the batcher too: an order's products share a request with those of the purchases
      // and orders that arrive with it, and fail together when any of them is refused.
      const found = await batcher.getAll(ids, requestId, deadline);
      return new Map(found.flatMap((product, index) => (product ? [[ids[index]!, product]] : [])));
    },
    async ping() {
      // Through the breaker: an open circuit answers at once, without a call to a service known down.
      await breaker.execute(async () => {
        const response = await pool.request({
          method: 'GET',
          path: `${basePath}/health`,
          signal: AbortSignal.timeout(1_000),
        });
        await response.body.dump();
        if (response.statusCode !== 200) throw new Error(`Products health answered ${response.statusCode}`);
      });
    },
    breakerState: () => STATE_NAMES[breaker.state],
    onBreakerChange: (listener) => {
      breaker.onStateChange((state) => listener(STATE_NAMES[state]));
    },
    close: () => pool.close(),
  };
}
