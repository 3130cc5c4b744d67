import { type Deadline, deadlineExceeded, withDeadline } from '@catalogo/kit/deadline';
import { captureTraceContext, inBatchSpan } from '@catalogo/kit/tracing';

/**
 * One request's answer, per product asked for: the product, the error that product alone fails with
 * (one Products answered but Inventory refuses), or nothing when Products does not know it.
 */
export type FetchedProducts<T> = Map<number, T | Error>;

/** One request for the products of `ids`; it rejects when the request as a whole failed. */
export type FetchProducts<T> = (
  ids: number[],
  requestId: string,
  deadline: Deadline | undefined,
) => Promise<FetchedProducts<T>>;

export interface ProductBatcherOptions {
  /** Products one request asks for at most. */
  maxBatch: number;
  /** A request in flight for longer than this is slow (retrying, most likely): the next starts beside it. */
  stallMs: number;
  /** Requests in flight at most, slow ones included. */
  maxInFlight: number;
}

export interface ProductBatcher<T> {
  /**
   * The product, from a request that started after this call and may serve other callers too;
   * undefined when Products does not know it. Rejects as the request did, or with the product's own
   * error, or with the deadline's 503 when the deadline passes first.
   */
  get(id: number, requestId: string, deadline?: Deadline): Promise<T | undefined>;
  /** Each product of `ids` as `get` answers it, asked for together (in one request, when they fit). */
  getAll(ids: number[], requestId: string, deadline?: Deadline): Promise<(T | undefined)[]>;
}

interface Waiting<T> {
  id: number;
  requestId: string;
  deadline: Deadline | undefined;
  resolve: (product: T | undefined) => void;
  reject: (err: unknown) => void;
  /** The request's trace, which the shared request joins. */
  trace: unknown;
}

/** The deadline furthest away, or none when any caller has none: the request serves them all. */
function latest(batch: { deadline: Deadline | undefined }[]): Deadline | undefined {
  let last: Deadline | undefined;
  for (const { deadline } of batch) {
    if (deadline === undefined) return undefined;
    if (last === undefined || deadline.at > last.at) last = deadline;
  }
  return last;
}

/**
 * Product fetches that arrive together, sent as one request. Most of what a fetch costs both
 * services is paid per request (the connection's turn, the request's parsing, routing, auth,
 * serialization, the policy around it), not per product, and a purchase needs its product priced
 * from a read no older than the purchase. So a fetch that finds no request being made starts one at
 * once, alone; the fetches that arrive while one is in flight wait for it, and the next request asks
 * for all their products together, up to `maxBatch`. A caller is never answered from a request that
 * started before it called, so no price it gets predates its call. Idle, nobody waits; under load,
 * many purchases share a request (all of them, when they buy one product).
 *
 * A request in flight for longer than `stallMs` stops holding up the next, so a slow answer or a
 * retry does not hold every purchase behind it; at most `maxInFlight` are in flight. Each caller's
 * own deadline bounds its wait; the request itself is bounded by the latest of theirs.
 */
export function createProductBatcher<T>(
  fetch: FetchProducts<T>,
  options: ProductBatcherOptions,
): ProductBatcher<T> {
  let waiting: Waiting<T>[] = [];
  let inFlight = 0;
  // Requests in flight that are not slow: while one is, the waiting wait for it.
  let active = 0;

  function take(): { batch: Waiting<T>[]; ids: number[] } {
    const ids = new Set<number>();
    const batch: Waiting<T>[] = [];
    const rest: Waiting<T>[] = [];
    for (const next of waiting) {
      // Already answered 503 by its deadline: nobody needs its product any more.
      if (next.deadline !== undefined && next.deadline.remaining() <= 0) continue;
      const fits = ids.has(next.id) || ids.size < options.maxBatch;
      if (fits) ids.add(next.id);
      (fits ? batch : rest).push(next);
    }
    waiting = rest;
    return { batch, ids: [...ids] };
  }

  function send(): void {
    const { batch, ids } = take();
    if (batch.length === 0) return;
    inFlight += 1;
    active += 1;
    let slow = false;
    const stall = setTimeout(() => {
      slow = true;
      active -= 1;
      pump();
    }, options.stallMs);
    const traces = batch.map((next) => next.trace);
    inBatchSpan('products.fetch', traces, () => fetch(ids, batch[0]!.requestId, latest(batch)))
      .then(
        (found) => {
          for (const next of batch) {
            const product = found.get(next.id);
            if (product instanceof Error) next.reject(product);
            else next.resolve(product);
          }
        },
        (err: unknown) => {
          for (const next of batch) next.reject(err);
        },
      )
      .finally(() => {
        clearTimeout(stall);
        if (!slow) active -= 1;
        inFlight -= 1;
        pump();
      });
  }

  function pump(): void {
    while (waiting.length > 0 && active === 0 && inFlight < options.maxInFlight) send();
  }

  /** A caller's wait for `id`, queued for the next request; bounded by its deadline. */
  function wait(id: number, requestId: string, deadline: Deadline | undefined): Promise<T | undefined> {
    const answer = new Promise<T | undefined>((resolve, reject) => {
      waiting.push({ id, requestId, deadline, resolve, reject, trace: captureTraceContext() });
    });
    return deadline === undefined ? answer : withDeadline(answer, deadline.remaining(), deadlineExceeded);
  }

  return {
    get(id, requestId, deadline) {
      const answer = wait(id, requestId, deadline);
      pump();
      return answer;
    },
    getAll(ids, requestId, deadline) {
      const answers = ids.map((id) => wait(id, requestId, deadline));
      pump();
      return Promise.all(answers);
    },
  };
}
