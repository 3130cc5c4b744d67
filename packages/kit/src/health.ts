import type { App } from './app.js';

export interface HealthCheck {
  run: () => Promise<void>;
  /** A non-critical check is reported but does not turn the service unhealthy. */
  critical: boolean;
}

const TIMEOUT_MS = 2_000;

function withTimeout(check: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), TIMEOUT_MS);
    check()
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}

/** GET /health: runs every check (each bounded in time) and answers 503 if a critical one fails. */
export function registerHealth(app: App, checks: Record<string, HealthCheck>): void {
  app.get('/health', { schema: { hide: true } }, async (request, reply) => {
    const entries = Object.entries(checks);
    const results = await Promise.allSettled(entries.map(([, check]) => withTimeout(check.run)));
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
    reply.code(healthy ? 200 : 503).type('application/json');
    return { status: healthy ? 'ok' : 'error', checks: report };
  });
}
