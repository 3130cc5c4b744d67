/**
 * Run by trace.test.ts with OTEL_EXPORTER_OTLP_ENDPOINT unset, or set: loads tracing the way a
 * service does, then everything a service loads, and writes one log line.
 */
await import('@catalogo/kit/tracing');
const { createLogger } = await import('@catalogo/kit/logger');
await import('../../services/inventory/src/app.js');
await import('../../services/products/src/app.js');
createLogger('inventory', 'info').info('loaded');
