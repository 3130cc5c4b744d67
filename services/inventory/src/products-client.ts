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
 * The largest answer read from Products. A product is at most a few kilobytes (a 255-character
 * name, a 5000-character description); a 50 MB answer read whole took 150 MB per purchase.
 */
export const MAX_PRODUCT_RESPONSE_BYTES = 64 * 1024;
const TOO_LARGE = 'UND_ERR_RES_EXCEEDED_MAX_SIZE';

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
 * The product with id `id` from a Products document, rebuilt from its checked members, or a
 * RefusedProductError naming what is wrong: another product than the one asked for, or a price
 * that would be charged other than as stated (12.345 was charged 12.35; 0.001 made a 500).
 */
function productFrom(document: unknown, id: number): ProductResource {
  const data = (document as { data?: unknown } | null)?.data as
    | { type?: unknown; id?: unknown; attributes?: Record<string, unknown> }
    | undefined;
  const attributes = data?.attributes;
  if (data?.type !== 'products' || typeof attributes !== 'object' || attributes === null) {
    throw new RefusedProductError('no product resource in the document');
  }
  if (data.id !== String(id)) throw new RefusedProductError(`another product's id: ${String(data.id)}`);
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
export function createProductsClient(config: ProductsClientConfig, log: Logger): ProductsClient {
  const origin = new URL(config.url);
  const basePath = origin.pathname.replace(/\/$/, '');
  const pool = new Pool(origin.origin, {
    connections: config.connections,
    keepAliveTimeout: 30_000,
    // Cuts the connection once an answer outgrows this, whatever its Content-Length says.
    maxResponseSize: MAX_PRODUCT_RESPONSE_BYTES,
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
  function fetchOnce(id: number, requestId: string, deadline: Deadline | undefined) {
    const left = deadline?.remaining() ?? Number.POSITIVE_INFINITY;
    // Out of the request's time: not a failure of Products, so neither retried nor counted by the breaker.
    if (left <= 0) throw deadlineExceeded();
    const cut = left < config.timeoutMs;
    const cancel = new EventEmitter();
    return withDeadline(requestProduct(id, requestId, cancel), cut ? left : config.timeoutMs, () => {
      cancel.emit('abort');
      if (cut) return deadlineExceeded();
      return new TransientProductsError(`Products did not answer within ${config.timeoutMs} ms`);
    });
  }

  async function requestProduct(id: number, requestId: string, signal: EventEmitter) {
    const response = await pool.request({
      method: 'GET',
      path: `${basePath}/api/products/${id}`,
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
    let document: unknown;
    try {
      document = JSON.parse(body);
    } catch {
      throw new RefusedProductError('the answer is not JSON');
    }
    return productFrom(document, id);
  }

  return {
    async getProduct(id, requestId, deadline) {
      try {
        return await policy.execute(() => fetchOnce(id, requestId, deadline));
      } catch (err) {
        if (err instanceof AppError) throw err;
        if (err instanceof BrokenCircuitError) log.debug('Products circuit open: failing fast');
        else if (err instanceof RefusedProductError || (err as { code?: unknown }).code === TOO_LARGE) {
          log.warn(
            { productId: id, reason: (err as Error).message },
            'refused the product Products answered',
          );
        } else log.error({ err, productId: id }, 'Products service call failed');
        throw serviceUnavailable(UNAVAILABLE, err);
      }
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
