import { EventEmitter } from 'node:events';
import { withDeadline } from '@catalogo/kit/deadline';
import { serviceUnavailable } from '@catalogo/kit/errors';
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

/** The product as the Products service returned it: the JSON:API resource object, untouched. */
export interface ProductResource {
  type: 'products';
  id: string;
  attributes: { precio: number; nombre: string; created_at: string; [name: string]: unknown };
  [member: string]: unknown;
}

/** A failure that may succeed on retry: connection errors, timeouts, 502/503/504. */
class TransientProductsError extends Error {
  override name = 'TransientProductsError';
}

const RETRYABLE_STATUSES = new Set([502, 503, 504]);
const UNAVAILABLE = 'Servicio de productos no disponible';

const isTransient = (err: Error) => err instanceof TransientProductsError || isConnectionError(err);

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('UND_ERR') || code.startsWith('E'));
}

function isProductResource(value: unknown): value is ProductResource {
  const data = value as ProductResource | undefined;
  return (
    data?.type === 'products' &&
    typeof data.id === 'string' &&
    typeof data.attributes?.precio === 'number' &&
    data.attributes.precio > 0 &&
    typeof data.attributes.created_at === 'string'
  );
}

export interface ProductsClient {
  /** The product, or undefined when the Products service says it does not exist (404). */
  getProduct(id: number, requestId: string): Promise<ProductResource | undefined>;
  /**
   * Several products (at most 100) in one request (`filter[id]`), by id; an id the Products service
   * does not know is absent from the answer.
   */
  getProducts(ids: number[], requestId: string): Promise<Map<number, ProductResource>>;
  /** Whether the Products service answers its health check now (reported, never fatal). */
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
export function createProductsClient(config: ProductsClientConfig, log: Logger): ProductsClient {
  const origin = new URL(config.url);
  const basePath = origin.pathname.replace(/\/$/, '');
  const pool = new Pool(origin.origin, { connections: config.connections, keepAliveTimeout: 30_000 });

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
  function fetchOnce<T>(request: (signal: EventEmitter) => Promise<T>) {
    const cancel = new EventEmitter();
    return withDeadline(request(cancel), config.timeoutMs, () => {
      cancel.emit('abort');
      return new TransientProductsError(`Products did not answer within ${config.timeoutMs} ms`);
    });
  }

  /** One GET of `path`: its JSON body's `data` on 200, undefined on 404, an error otherwise. */
  async function requestData(path: string, requestId: string, signal: EventEmitter) {
    const response = await pool.request({
      method: 'GET',
      path: `${basePath}${path}`,
      headers: { 'x-api-key': config.apiKey, accept: 'application/vnd.api+json', 'x-request-id': requestId },
      signal,
    });
    const body = await response.body.text();
    if (response.statusCode === 404) return undefined;
    if (RETRYABLE_STATUSES.has(response.statusCode)) {
      throw new TransientProductsError(`Products answered ${response.statusCode}`);
    }
    if (response.statusCode !== 200) {
      // 401 (a wrong PRODUCTS_API_KEY) or another answer that a retry cannot change.
      throw new Error(`Products answered ${response.statusCode}: ${body.slice(0, 200)}`);
    }
    return (JSON.parse(body) as { data?: unknown }).data;
  }

  async function requestProduct(id: number, requestId: string, signal: EventEmitter) {
    const data = await requestData(`/api/products/${id}`, requestId, signal);
    if (data === undefined) return undefined;
    if (!isProductResource(data)) throw new Error('Products answered a document without a valid product');
    return data;
  }

  async function requestProducts(ids: number[], requestId: string, signal: EventEmitter) {
    const data = await requestData(
      `/api/products?filter[id]=${ids.join(',')}&page[size]=${ids.length}`,
      requestId,
      signal,
    );
    if (!Array.isArray(data) || !data.every(isProductResource)) {
      throw new Error('Products answered a collection without valid products');
    }
    const wanted = new Set(ids);
    return new Map(data.filter((p) => wanted.has(Number(p.id))).map((p) => [Number(p.id), p]));
  }

  /** A call through the policy; any failure to get an answer is a 503 for the client. */
  async function call<T>(request: (signal: EventEmitter) => Promise<T>, context: Record<string, unknown>) {
    try {
      return await policy.execute(() => fetchOnce(request));
    } catch (err) {
      if (err instanceof BrokenCircuitError) log.debug('Products circuit open: failing fast');
      else log.error({ err, ...context }, 'Products service call failed');
      throw serviceUnavailable(UNAVAILABLE, err);
    }
  }

  return {
    getProduct: (id, requestId) => call((signal) => requestProduct(id, requestId, signal), { productId: id }),
    getProducts: (ids, requestId) =>
      call((signal) => requestProducts(ids, requestId, signal), { productIds: ids }),
    async ping() {
      const response = await pool.request({
        method: 'GET',
        path: `${basePath}/health`,
        signal: AbortSignal.timeout(1_000),
      });
      await response.body.dump();
      if (response.statusCode !== 200) throw new Error(`Products health answered ${response.statusCode}`);
    },
    breakerState: () => STATE_NAMES[breaker.state],
    onBreakerChange: (listener) => {
      breaker.onStateChange((state) => listener(STATE_NAMES[state]));
    },
    close: () => pool.close(),
  };
}
