import type { SpanExporter } from '@opentelemetry/sdk-trace-node';

/**
 * Tracing, when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing otherwise. The services load this
 * module before any other (`node --import @catalogo/kit/tracing`, in their start scripts and the
 * image's command), because the instrumentations patch `pg` and `http` as those load. Without the
 * endpoint the OpenTelemetry SDK is never imported, and every function below is a no-op that costs
 * a call.
 */

/** What the services use of tracing: the SDK's when it runs, no-ops otherwise. */
export interface Tracer {
  /** `trace_id` and `span_id` of the active span, for every log line written within a request. */
  logFields(): Record<string, string>;
  /** Names the active request span after its route (`POST /api/purchases`), as the URL cannot. */
  nameRequest(method: string, route: string): void;
  /** The active context, captured where a request hands work to code that runs outside it. */
  captureContext(): unknown;
  /**
   * Runs `work` in a span of its own, in the trace of the first captured context, linked to the
   * spans of all of them: one statement doing the work of several requests.
   */
  inBatchSpan<T>(name: string, captured: unknown[], work: () => Promise<T>): Promise<T>;
  /** Sends the spans still buffered. */
  shutdown(): Promise<void>;
}

// Process-wide, as tracing is: the instrumentations patch modules for the whole process.
let active: Tracer | undefined;

export const tracingEnabled = () => active !== undefined;

export const logTraceFields = () => active?.logFields() ?? {};

export const nameRequestSpan = (method: string, route: string) => active?.nameRequest(method, route);

export const captureTraceContext = () => active?.captureContext();

export function inBatchSpan<T>(name: string, captured: unknown[], work: () => Promise<T>): Promise<T> {
  return active ? active.inBatchSpan(name, captured, work) : work();
}

export async function shutdownTracing(): Promise<void> {
  await active?.shutdown();
}

/** Starts the SDK (once). `exporter` replaces OTLP: the tests keep spans in memory. */
export async function startTracing(options: { serviceName: string; exporter?: SpanExporter }): Promise<void> {
  if (active) return;
  // Imported only now: without tracing, not one module of the SDK is loaded.
  const { startSdk } = await import('./tracing.sdk.js');
  active = startSdk(options);
}

/** The service's name in its traces: OTEL_SERVICE_NAME, else the npm package that started it. */
function serviceName(env: NodeJS.ProcessEnv): string {
  return env.OTEL_SERVICE_NAME?.trim() || env.npm_package_name?.replace(/^@[^/]+\//, '') || 'catalogo';
}

if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()) {
  await startTracing({ serviceName: serviceName(process.env) });
}
