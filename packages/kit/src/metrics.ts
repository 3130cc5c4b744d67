import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export interface HttpMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route' | 'status'>;
  /** Connections closed on arrival because the server held its maximum already. */
  refusedConnections: Counter;
  /** Requests whose body stopped before its end because the connection closed. */
  clientAborts: Counter;
}

/** One registry per app instance (no global default registry), so tests can build many apps. */
export function createHttpMetrics(service: string): HttpMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const labelNames = ['method', 'route', 'status'] as const;
  return {
    registry,
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route template and status',
      labelNames,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency in seconds, by method, route template and status',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    refusedConnections: new Counter({
      name: 'http_connections_refused_total',
      help: 'Connections closed on arrival because the server held HTTP_MAX_CONNECTIONS already',
      registers: [registry],
    }),
    clientAborts: new Counter({
      name: 'http_client_aborts_total',
      help: 'Requests whose connection closed before their whole body arrived (client gone or timed out)',
      registers: [registry],
    }),
  };
}

/**
 * The registry's text, rendered at most once per `maxAgeMs`: scrapes within that time, and every
 * scrape that arrives while a rendering is under way, share one text. Rendering walks every series
 * and the process's statistics; `/metrics` needs no key, so without this bound a flood of scrapes
 * took the CPU the API needs.
 */
export function cachedMetricsText(registry: Registry, maxAgeMs: number): () => Promise<string> {
  let rendering: Promise<string> | undefined;
  let text = '';
  let renderedAt = Number.NEGATIVE_INFINITY;
  return () => {
    if (rendering) return rendering;
    if (performance.now() - renderedAt < maxAgeMs) return Promise.resolve(text);
    rendering = registry
      .metrics()
      .then((rendered) => {
        text = rendered;
        renderedAt = performance.now();
        return rendered;
      })
      .finally(() => {
        rendering = undefined;
      });
    return rendering;
  };
}
