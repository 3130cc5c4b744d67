import type { FastifyBaseLogger } from 'fastify';
import type { App } from './app.js';
import { withDeadline } from './deadline.js';

export interface HealthCheck {
  run: () => Promise<void>;
  /** A non-critical check is reported but does not turn the service unhealthy. */
  critical: boolean;
  /**
   * How long a result is reported again before the check runs anew (default 0: every hit runs it).
   * A check that calls another service sets it, so that hits on /health, which needs no key, cannot
   * multiply the calls.
   */
  maxAgeMs?: number;
}

const TIMEOUT_MS = 2_000;

/**
 * One check as /health runs it: bounded in time, one run at a time (hits that arrive during a run
 * share its result) and its result reused for `maxAgeMs`. A failure is logged once per run.
 */
function sharedRun(name: string, check: HealthCheck, log: FastifyBaseLogger): () => Promise<void> {
  let last: Promise<void> | undefined;
  let running = false;
  let settledAt = Number.NEGATIVE_INFINITY;
  return () => {
    if (last && (running || performance.now() - settledAt < (check.maxAgeMs ?? 0))) return last;
    running = true;
    last = withDeadline(
      Promise.resolve().then(() => check.run()),
      TIMEOUT_MS,
      () => new Error(`no answer within ${TIMEOUT_MS} ms`),
    )
      .catch((err: unknown) => {
        log.warn({ check: name, err }, 'health check failed');
        throw err;
      })
      .finally(() => {
        running = false;
        settledAt = performance.now();
      });
    return last;
  };
}

/** GET /health: runs every check (each bounded in time) and answers 503 if a critical one fails. */
export function registerHealth(app: App, checks: Record<string, HealthCheck>): void {
  const entries = Object.entries(checks).map(
    ([name, check]) => [name, check, sharedRun(name, check, app.log)] as const,
  );
  app.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    const results = await Promise.allSettled(entries.map(([, , run]) => run()));
    let healthy = true;
    const report: Record<string, string> = {};
    results.forEach((result, index) => {
      const [name, check] = entries[index]!;
      report[name] = result.status === 'fulfilled' ? 'ok' : 'error';
      if (result.status === 'rejected' && check.critical) healthy = false;
    });
    // Sent as bytes: the contract's media type is exactly application/json, and Fastify would add a
    // charset parameter to a serialised object (RFC 8259 defines none for JSON).
    reply.code(healthy ? 200 : 503).type('application/json');
    return Buffer.from(JSON.stringify({ status: healthy ? 'ok' : 'error', checks: report }));
  });
}
