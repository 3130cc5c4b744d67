import type { App } from './app.js';
import { withDeadline } from './deadline.js';

export interface HealthCheck {
  run: () => Promise<void>;
  /** A non-critical check is reported but does not turn the service unhealthy. */
  critical: boolean;
}

const TIMEOUT_MS = 2_000;

/** GET /health: runs every check (each bounded in time) and answers 503 if a critical one fails. */
export function registerHealth(app: App, checks: Record<string, HealthCheck>): void {
  app.get('/health', { schema: { hide: true } }, async (request, reply) => {
    const entries = Object.entries(checks);
    const results = await Promise.allSettled(
      entries.map(([, check]) =>
        withDeadline(
          Promise.resolve().then(check.run),
          TIMEOUT_MS,
          () => new Error(`no answer within ${TIMEOUT_MS} ms`),
        ),
      ),
    );
    let healthy = true;
    const report: Record<string, string> = {};
    results.forEach((result, index) => {
      const [name, check] = entries[index]!;
      report[name] = result.status === 'fulfilled' ? 'ok' : 'error';
      if (result.status === 'rejected') {
        request.log.warn({ check: name, err: result.reason }, 'health check failed');
        if (check.critical) healthy = false;
      }
    });
    // Sent as bytes: the contract's media type is exactly application/json, and Fastify would add a
    // charset parameter to a serialised object (RFC 8259 defines none for JSON).
    reply.code(healthy ? 200 : 503).type('application/json');
    return Buffer.from(JSON.stringify({ status: healthy ? 'ok' : 'error', checks: report }));
  });
}
