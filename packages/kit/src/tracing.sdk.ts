import {
  type Context,
  context,
  type Link,
  type SpanContext,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import type { Tracer } from './tracing.js';

/** Requests that would fill the traces with noise: scrapes and probes, every few seconds. */
const UNTRACED = new Set(['/metrics', '/health']);

export interface TracingSdkOptions {
  serviceName: string;
  /** Where spans go; unset, OTLP over HTTP/protobuf to OTEL_EXPORTER_OTLP_ENDPOINT, in batches. */
  exporter?: SpanExporter;
}

/**
 * The OpenTelemetry SDK: one trace per request through the HTTP server (W3C `traceparent` taken
 * from the caller), the calls to other services through undici (`traceparent` sent on), and each
 * SQL statement through pg. Must start before `pg` is loaded: it patches the module as it loads.
 */
export function startSdk(options: TracingSdkOptions): Tracer {
  // The OTLP exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_EXPORTER_OTLP_*) itself.
  const processor = options.exporter
    ? new SimpleSpanProcessor(options.exporter)
    : new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [processor],
  });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED.has((request.url ?? '').split('?')[0]!),
      }),
      new UndiciInstrumentation(),
      // Statements outside a request (the outbox relay's polls, housekeeping) would each be a trace.
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  const tracer = trace.getTracer('@catalogo/kit');

  return {
    logFields(): Record<string, string> {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },
    nameRequest(method, route) {
      const span = trace.getActiveSpan();
      span?.updateName(`${method} ${route}`);
      span?.setAttribute('http.route', route);
    },
    captureContext: () => context.active(),
    inBatchSpan(name, captured, work) {
      const contexts = captured as Context[];
      const links: Link[] = contexts
        .map((c) => trace.getSpanContext(c))
        .filter((c): c is SpanContext => c !== undefined)
        .map((c) => ({ context: c }));
      // Parented to the first request of the batch, so that its trace shows the write; linked to
      // every request whose purchase the statement records, whichever trace they belong to.
      const parent = contexts[0] ?? context.active();
      return tracer.startActiveSpan(
        name,
        { links, attributes: { 'purchases.count': contexts.length } },
        parent,
        async (span) => {
          try {
            return await work();
          } catch (err) {
            span.recordException(err as Error);
            span.setStatus({ code: SpanStatusCode.ERROR });
            throw err;
          } finally {
            span.end();
          }
        },
      );
    },
    shutdown: () => provider.shutdown(),
  };
}
