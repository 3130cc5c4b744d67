import { performance } from 'node:perf_hooks';
import { expect } from 'vitest';
import { detailsOf, errorDocumentProblem } from './chaos.assertions.js';

export const API_KEY = 'test-key';
const JSONAPI = 'application/vnd.api+json';
export const jsonApiHeaders = { 'x-api-key': API_KEY, 'content-type': JSONAPI };

export interface Sample {
  phase: string;
  /** What was asked, e.g. `purchase` or `GET product`. */
  name: string;
  /** The HTTP status, or `failed` when no answer came (connection refused or reset). */
  status: number | 'failed';
  /** When it was sent and when the answer (or failure) came, in ms since the load began. */
  start: number;
  end: number;
  ms: number;
  /** The first error `detail`, or for a failed request the error code. */
  detail: string | undefined;
  /** What is wrong with an error answer that should be a JSON:API error document. */
  problem: string | undefined;
  body: string;
}

/**
 * A bounded load of HTTP requests on 127.0.0.1, each recorded with the phase of the experiment it
 * was sent in (the phase when it started), so the checks can say what was due when.
 */
export class Load {
  phase = 'warm-up';
  readonly samples: Sample[] = [];
  inFlight = 0;
  private readonly started = performance.now();

  constructor(private readonly label: string) {}

  /** Milliseconds since the load began. */
  now(): number {
    return performance.now() - this.started;
  }

  elapsed(): string {
    return `${(this.now() / 1000).toFixed(2)} s`;
  }

  log(line: string): void {
    console.log(`[chaos:${this.label}] ${this.elapsed()} ${line}`);
  }

  setPhase(phase: string): void {
    this.phase = phase;
    this.log(`phase ${phase}`);
  }

  /**
   * Creates `count` products through the Products service and gives each `stock` units through the
   * Inventory service; resolves with each product's initial stock, for the ledger checks.
   */
  async seed(
    urls: { products: string; inventory: string },
    count: number,
    stock: number,
    precioOf: (index: number) => number,
  ): Promise<Map<number, number>> {
    const initial = new Map<number, number>();
    for (let i = 0; i < count; i++) {
      const created = await this.send('create product', `${urls.products}/api/products`, {
        method: 'POST',
        headers: jsonApiHeaders,
        body: { data: { type: 'products', attributes: { nombre: `Caos ${i}`, precio: precioOf(i) } } },
      });
      expect(created.status, created.body).toBe(201);
      const id = Number(JSON.parse(created.body).data.id);
      const set = await this.send('set stock', `${urls.inventory}/api/inventory/${id}`, {
        method: 'PATCH',
        headers: jsonApiHeaders,
        body: { data: { type: 'inventories', id: String(id), attributes: { cantidad: stock } } },
      });
      expect(set.status, set.body).toBe(200);
      initial.set(id, stock);
    }
    return initial;
  }

  async send(
    name: string,
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
  ): Promise<Sample> {
    const phase = this.phase;
    const begun = this.now();
    this.inFlight++;
    let sample: Sample;
    try {
      const res = await fetch(url, {
        method: init.method ?? 'GET',
        headers: init.headers ?? { 'x-api-key': API_KEY },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        signal: AbortSignal.timeout(20_000),
      });
      const body = await res.text();
      const isApi = new URL(url).pathname.startsWith('/api');
      sample = {
        phase,
        name,
        status: res.status,
        start: begun,
        end: this.now(),
        ms: this.now() - begun,
        detail: res.status >= 400 ? detailsOf(body)[0] : undefined,
        problem:
          isApi && res.status >= 400
            ? errorDocumentProblem({
                status: res.status,
                contentType: res.headers.get('content-type') ?? undefined,
                body,
              })
            : undefined,
        body,
      };
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      sample = {
        phase,
        name,
        status: 'failed',
        start: begun,
        end: this.now(),
        ms: this.now() - begun,
        detail: cause?.code ?? cause?.message ?? String(err),
        problem: undefined,
        body: '',
      };
    } finally {
      this.inFlight--;
    }
    this.samples.push(sample);
    return sample;
  }

  /** Samples of the phases given (all when none). */
  of(...phases: string[]): Sample[] {
    return phases.length === 0 ? this.samples : this.samples.filter((s) => phases.includes(s.phase));
  }

  /** `phase: status×count, …` lines for the report. */
  summary(): string[] {
    const byPhase = new Map<string, Map<string, number>>();
    for (const s of this.samples) {
      const counts = byPhase.get(s.phase) ?? new Map<string, number>();
      const key = `${s.status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      byPhase.set(s.phase, counts);
    }
    return [...byPhase].map(
      ([phase, counts]) =>
        `${phase}: ${[...counts]
          .sort()
          .map(([status, n]) => `${status}×${n}`)
          .join(', ')}`,
    );
  }
}

/**
 * Runs `count` workers, each repeating `job` while `keepGoing()` holds, the whole bounded by
 * `maxJobs` jobs in all.
 */
export async function workers(
  count: number,
  keepGoing: () => boolean,
  maxJobs: number,
  job: (worker: number) => Promise<unknown>,
): Promise<number> {
  let jobs = 0;
  await Promise.all(
    Array.from({ length: count }, async (_, worker) => {
      while (keepGoing() && jobs < maxJobs) {
        jobs++;
        await job(worker);
      }
    }),
  );
  return jobs;
}

/** The purchase id and quantity of a 201 answer to POST /api/purchases. */
export function purchaseOf(sample: Sample): { id: number; cantidad: number; productoId: number } {
  const data = (JSON.parse(sample.body) as { data: { id: string; attributes: Record<string, number> } }).data;
  return {
    id: Number(data.id),
    cantidad: data.attributes.cantidad!,
    productoId: data.attributes.producto_id!,
  };
}

export const percentile = (values: number[], p: number): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
