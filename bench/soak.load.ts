import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The soak's load: a mix of what clients do, sent at a steady rate (an open loop: requests leave on
 * schedule whether or not earlier ones have been answered, up to a cap in flight), each answer
 * checked for what it may be, and the client's own account of the stock changes it caused.
 */

export type Kind =
  | 'product-read'
  | 'product-list'
  | 'inventory-read'
  | 'inventory-list'
  | 'purchase-list'
  | 'purchase-spread'
  | 'purchase-hot'
  | 'adjustment'
  | 'keyed-purchase'
  | 'keyed-retry';

/** Shares of the mix, in percent. */
export const MIX: readonly (readonly [Kind, number])[] = [
  ['product-read', 22],
  ['product-list', 8],
  ['inventory-read', 10],
  ['inventory-list', 4],
  ['purchase-list', 4],
  ['purchase-spread', 28],
  ['purchase-hot', 12],
  ['adjustment', 5],
  ['keyed-purchase', 4],
  ['keyed-retry', 3],
];

export interface Targets {
  productsUrl: string;
  inventoryUrl: string;
  apiKey: string;
  productIds: number[];
}

/** What the responses of one sampling interval were. */
export class Interval {
  latencies: number[] = [];
  statuses = new Map<number, number>();
  /** No response at all (connection error, timeout). */
  errors = 0;
  purchases = 0;
  /** Requests due that were not sent because the cap in flight was reached (the system fell behind). */
  behind = 0;

  record(status: number, ms: number): void {
    this.latencies.push(ms);
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  count5xx(): number {
    let n = 0;
    for (const [status, count] of this.statuses) if (status >= 500) n += count;
    return n;
  }
}

/** The client's side of the books, and the answers that broke a rule. */
export class Ledger {
  /** Units adjusted per product, from the adjustments answered 201. */
  readonly adjusted = new Map<number, number>();
  /** Units bought, from the purchases answered 201. */
  bought = 0;
  /** Stock changes whose outcome is unknown (no answer, or a 5xx): the books cannot be held to them. */
  unknownOutcomes = 0;
  /** Keyed retries answered otherwise than with the first answer, replayed byte for byte. */
  badReplays = 0;
  /** Answers no request of that kind may get (e.g. a 400 for a valid request). */
  readonly unexpected = new Map<string, number>();

  flag(kind: Kind, status: number): void {
    const key = `${kind} ${status}`;
    this.unexpected.set(key, (this.unexpected.get(key) ?? 0) + 1);
  }
}

interface Answer {
  status: number;
  replayed: boolean;
  body: string;
}

const MEDIA_TYPE = 'application/vnd.api+json';

export class SoakLoad {
  private readonly agent: http.Agent;
  private readonly targets: Targets;
  private readonly keyed: { key: string; body: string; answer: Answer }[] = [];
  private readonly picks: Kind[] = [];
  inFlight = 0;
  interval = new Interval();
  readonly ledger = new Ledger();

  constructor(targets: Targets, connections: number) {
    this.targets = targets;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    for (const [kind, share] of MIX) for (let i = 0; i < share; i += 1) this.picks.push(kind);
  }

  /** The current interval's tally, replaced by a fresh one. */
  takeInterval(): Interval {
    const done = this.interval;
    this.interval = new Interval();
    return done;
  }

  /** Sends `rate` requests per second for `seconds`, never more than `maxInFlight` at once. */
  async run(rate: number, seconds: number, maxInFlight: number): Promise<void> {
    const started = performance.now();
    let issued = 0;
    const pending = new Set<Promise<void>>();
    for (;;) {
      const elapsed = (performance.now() - started) / 1000;
      if (elapsed >= seconds) break;
      const due = Math.floor(rate * elapsed) - issued;
      for (let i = 0; i < due; i += 1) {
        issued += 1;
        if (this.inFlight >= maxInFlight) {
          this.interval.behind += 1;
          continue;
        }
        const request = this.one().finally(() => pending.delete(request));
        pending.add(request);
      }
      await sleep(5);
    }
    await Promise.all(pending);
  }

  close(): void {
    this.agent.destroy();
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(Math.random() * items.length)]!;
  }

  private async one(): Promise<void> {
    const kind = this.pick(this.picks);
    const { productIds } = this.targets;
    const id = this.pick(productIds);
    const hot = productIds[0]!;
    switch (kind) {
      case 'product-read':
        return this.read(kind, this.targets.productsUrl, `/api/products/${id}`);
      case 'product-list':
        return this.read(
          kind,
          this.targets.productsUrl,
          `/api/products?page[size]=20&page[number]=${1 + Math.floor(Math.random() * 50)}`,
        );
      case 'inventory-read':
        return this.read(kind, this.targets.inventoryUrl, `/api/inventory/${id}`);
      case 'inventory-list':
        return this.read(kind, this.targets.inventoryUrl, '/api/inventory?page[size]=20');
      case 'purchase-list':
        return this.read(
          kind,
          this.targets.inventoryUrl,
          `/api/purchases?filter[producto_id]=${id}&page[size]=10`,
        );
      case 'purchase-spread':
      case 'purchase-hot':
        return this.purchase(kind, kind === 'purchase-hot' ? hot : id, undefined);
      case 'keyed-purchase':
        return this.purchase(kind, id, randomUUID());
      case 'keyed-retry':
        return this.retry();
      case 'adjustment':
        return this.adjust(id);
    }
  }

  private async read(kind: Kind, base: string, path: string): Promise<void> {
    const answer = await this.send(base, 'GET', path);
    if (answer && answer.status !== 200) this.ledger.flag(kind, answer.status);
  }

  private async purchase(kind: Kind, productoId: number, key: string | undefined): Promise<void> {
    const cantidad = 1 + Math.floor(Math.random() * 3);
    const body = JSON.stringify({
      data: { type: 'purchases', attributes: { producto_id: productoId, cantidad } },
    });
    const answer = await this.send(this.targets.inventoryUrl, 'POST', '/api/purchases', body, key);
    this.interval.purchases += 1;
    if (!answer || answer.status >= 500) {
      this.ledger.unknownOutcomes += 1;
      return;
    }
    if (answer.status === 201) this.ledger.bought += cantidad;
    else this.ledger.flag(kind, answer.status);
    if (key && this.keyed.length < 1_000) this.keyed.push({ key, body, answer });
  }

  /** The same key and body again: the first answer must come back, replayed, byte for byte. */
  private async retry(): Promise<void> {
    const first = this.keyed.shift();
    if (!first) return this.purchase('keyed-purchase', this.pick(this.targets.productIds), randomUUID());
    const answer = await this.send(
      this.targets.inventoryUrl,
      'POST',
      '/api/purchases',
      first.body,
      first.key,
    );
    if (!answer) return;
    if (answer.status !== first.answer.status || !answer.replayed || answer.body !== first.answer.body) {
      this.ledger.badReplays += 1;
    }
  }

  private async adjust(productoId: number): Promise<void> {
    const delta =
      Math.random() < 0.5 ? -(1 + Math.floor(Math.random() * 3)) : 1 + Math.floor(Math.random() * 5);
    const body = JSON.stringify({
      data: { type: 'inventory-adjustments', attributes: { delta, reason: 'Prueba de resistencia' } },
    });
    const answer = await this.send(
      this.targets.inventoryUrl,
      'POST',
      `/api/inventory/${productoId}/adjustments`,
      body,
    );
    if (!answer || answer.status >= 500) {
      this.ledger.unknownOutcomes += 1;
      return;
    }
    if (answer.status === 201)
      this.ledger.adjusted.set(productoId, (this.ledger.adjusted.get(productoId) ?? 0) + delta);
    else this.ledger.flag('adjustment', answer.status);
  }

  /** One request, timed from its departure to the end of its answer; undefined when none came. */
  private send(base: string, method: 'GET' | 'POST', path: string, body?: string, key?: string) {
    const url = new URL(path, base);
    const headers: Record<string, string> = { 'x-api-key': this.targets.apiKey, accept: MEDIA_TYPE };
    if (body !== undefined) headers['content-type'] = MEDIA_TYPE;
    if (key) headers['idempotency-key'] = key;
    const interval = this.interval;
    const began = performance.now();
    this.inFlight += 1;
    return new Promise<Answer | undefined>((resolve) => {
      const request = http.request(
        {
          agent: this.agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method,
          headers,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            interval.record(status, performance.now() - began);
            resolve({
              status,
              replayed: response.headers['idempotent-replayed'] === 'true',
              body: Buffer.concat(chunks).toString('utf8'),
            });
          });
          response.on('error', () => {
            interval.errors += 1;
            resolve(undefined);
          });
        },
      );
      request.setTimeout(30_000, () => request.destroy(new Error('timeout')));
      request.on('error', () => {
        interval.errors += 1;
        resolve(undefined);
      });
      request.end(body);
    }).finally(() => {
      this.inFlight -= 1;
    });
  }
}
