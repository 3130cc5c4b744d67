import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

/**
 * What one side (a target or its floor) did over one or more runs. Every latency is kept (no
 * histogram), so targets and floors get their percentiles by the same code, in fractional ms.
 */
export class Tally {
  readonly latencies: number[] = [];
  seconds = 0;
  non2xx = 0;
  /** Connection errors and timeouts (no response at all). */
  errors = 0;
  readonly statuses = new Map<number, number>();
  /** CPU seconds per process group over the measured runs. */
  readonly cpu = new Map<string, number>();

  addCpu(before: Map<string, number>, after: Map<string, number>): void {
    for (const [group, seconds] of after) {
      // A process that exited in between takes its CPU time with it: never count less than nothing.
      const delta = Math.max(0, seconds - (before.get(group) ?? seconds));
      this.cpu.set(group, (this.cpu.get(group) ?? 0) + delta);
    }
  }

  record(status: number, ms: number): void {
    this.latencies.push(ms);
    if (status < 200 || status > 299) this.non2xx += 1;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }
}

export interface Summary {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  statuses: Record<string, number>;
  /** CPU microseconds per response, per process group. */
  cpuPerRequest: Record<string, number>;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function summarize(tally: Tally): Summary {
  const sorted = Float64Array.from(tally.latencies).sort();
  return {
    requests: tally.latencies.length,
    rps: tally.seconds > 0 ? tally.latencies.length / tally.seconds : 0,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    non2xx: tally.non2xx,
    errors: tally.errors,
    statuses: Object.fromEntries([...tally.statuses].sort(([a], [b]) => a - b)),
    cpuPerRequest: Object.fromEntries(
      [...tally.cpu].map(([group, seconds]) => [
        group,
        (seconds * 1e6) / Math.max(1, tally.latencies.length),
      ]),
    ),
  };
}

export interface HttpLoad {
  url: string;
  connections: number;
  headers: Record<string, string>;
  method: 'GET' | 'POST';
  /** Called for every request: the path (and body) it sends. */
  next: () => { path: string; body?: string };
}

/** Drives `load` with autocannon for `seconds`, adding every response to `tally`. */
export function runHttp(load: HttpLoad, seconds: number, tally: Tally): Promise<void> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: load.url,
        connections: load.connections,
        duration: seconds,
        timeout: 10,
        headers: load.headers,
        method: load.method,
        requests: [{ method: load.method, setupRequest: (request) => ({ ...request, ...load.next() }) }],
      },
      (err: unknown, result) => {
        if (err) return reject(err);
        tally.seconds += result.duration;
        tally.errors += result.errors;
        resolve();
      },
    );
    instance.on('response', (_client, status, _bytes, ms) => tally.record(status, ms));
  });
}

/**
 * The floor of the purchase scenarios: `workers` loops, each awaiting one operation after the other
 * (a closed loop, as autocannon's connections are), for `seconds`. Operations finishing after the
 * deadline are not counted, as autocannon does not count the responses it stops waiting for.
 * `operation` resolves to the HTTP status the service would answer.
 */
export async function runLoop(
  workers: number,
  operation: () => Promise<number>,
  seconds: number,
  tally: Tally,
): Promise<void> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const began = performance.now();
      let status: number;
      try {
        status = await operation();
      } catch {
        tally.errors += 1;
        continue;
      }
      const ended = performance.now();
      if (ended <= deadline) tally.record(status, ended - began);
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  tally.seconds += seconds;
}
