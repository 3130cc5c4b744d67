import {
  answerFrameworkError,
  BODY_LIMIT,
  countAndLogResponse,
  requestIdOf,
  toAppError,
} from '@catalogo/kit/app';
import { AppError, errorDocument } from '@catalogo/kit/errors';
import { type HealthCheck, registerHealth } from '@catalogo/kit/health';
import { MEDIA_TYPE } from '@catalogo/kit/jsonapi';
import { capConnections, serverTimeouts } from '@catalogo/kit/limits';
import { redactUrl } from '@catalogo/kit/logger';
import { cachedMetricsText, createHttpMetrics } from '@catalogo/kit/metrics';
import Fastify, {
  errorCodes,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config.js';
import { registerConsole } from './console/console.static.js';
import { operationalRoutes } from './proxy/proxy.operational.js';
import { proxyRoutes, ROUTES } from './proxy/proxy.routes.js';

/** A service's /health reported again for this long: hits on the gateway's /health cost it nothing. */
const HEALTH_MAX_AGE_MS = 1_000;

const isApi = (url: string) => url === '/api' || url.startsWith('/api/') || url.startsWith('/api?');

function isConsolePage(url: string): boolean {
  const path = url.split('?', 1)[0]!;
  return !isApi(path) && !path.slice(path.lastIndexOf('/') + 1).includes('.');
}

function upstreamHealth(url: string): HealthCheck {
  return {
    critical: true,
    maxAgeMs: HEALTH_MAX_AGE_MS,
    run: async () => {
      // The kit bounds the check's time; the signal also frees the connection when it gives up.
      const response = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status !== 200) throw new Error(`${url}/health answered ${response.status}`);
    },
  };
}

function notFound(request: FastifyRequest): AppError {
  return new AppError(404, 'route_not_found', {
    detail: `No existe la ruta ${request.method} ${redactUrl(request.url)}`,
  });
}

/**
 * Builds the gateway without listening: the one entry point on port 3000. `/api/…` goes to the
 * Products or Inventory service by prefix, unchanged both ways; the gateway itself checks no API
 * key (the services do) and keeps none. `/` serves the console; `/health` and `/metrics` are its own.
 */
export async function buildApp(config: GatewayConfig, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    ...serverTimeouts(config.http),
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: requestIdOf,
    // Paths are forwarded as sent: a long segment is the service's to judge, not the router's 414.
    routerOptions: { maxParamLength: 8192 },
    frameworkErrors: (error, request, reply) => answerFrameworkError(error, request.id, reply),
  });
  const metrics = createHttpMetrics('gateway');
  capConnections(app.server, config.http, metrics.refusedConnections);

  // Bodies are streamed to the service untouched, never parsed. One announced over the services'
  // limit is refused here with their 413: a service answers it before reading the body and closes
  // the connection, which would reach the client as a broken upstream (502) instead.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    if (Number(request.headers['content-length']) > BODY_LIMIT)
      return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), undefined);
    done(null, payload);
  });

  app.addHook('onRequest', (request, reply, done) => {
    // The service's answer carries the same id (it is forwarded); the gateway's own answers need it too.
    reply.header('x-request-id', request.id);
    done();
  });

  app.addHook('onResponse', countAndLogResponse(metrics));

  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error);
    const fields = { status: appError.status, code: appError.code };
    // An upstream's failure is logged with its cause where it happened (the proxy's "response errored").
    if (appError.status === 500) request.log.error({ err: error }, 'unexpected error');
    else if (appError.status >= 500) request.log.warn(fields, appError.message);
    else request.log.info(fields, appError.message);
    if (appError.headers) reply.headers(appError.headers);
    reply
      .code(appError.status)
      .type(MEDIA_TYPE)
      .send(Buffer.from(JSON.stringify(errorDocument(appError.toErrorObjects()))));
  });

  registerHealth(app, {
    products: upstreamHealth(config.productsUrl),
    inventory: upstreamHealth(config.inventoryUrl),
  });
  const metricsText = cachedMetricsText(metrics.registry, config.metricsCacheMs);
  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metricsText();
  });

  const urls = { products: config.productsUrl, inventory: config.inventoryUrl };
  for (const stream of [false, true]) {
    for (const upstream of ['products', 'inventory'] as const) {
      const prefixes = ROUTES.filter((r) => r.upstream === upstream && Boolean(r.stream) === stream);
      if (prefixes.length === 0) continue;
      await app.register(
        proxyRoutes({
          upstream,
          url: urls[upstream],
          prefixes: prefixes.map((r) => r.prefix),
          timeoutMs: config.upstreamTimeoutMs,
          // Each listening client holds one stream connection: as many as the gateway takes clients.
          connections: stream ? config.http.maxConnections : config.upstreamConnections,
          stream,
        }),
      );
    }
  }
  await app.register(operationalRoutes(urls));
  // Any other path under /api is no route of the API: a JSON:API 404 (never the console's page).
  app.all('/api', async (request) => {
    throw notFound(request);
  });
  app.all('/api/*', async (request) => {
    throw notFound(request);
  });

  const consoleFallback = await registerConsole(app, config.consoleDir);
  app.setNotFoundHandler(async (request, reply: FastifyReply) => {
    // A page of the console reloaded or opened from a link: the console's router shows it. A
    // missing file (a name with an extension) stays a 404: a script answered with HTML breaks the page.
    if ((request.method === 'GET' || request.method === 'HEAD') && isConsolePage(request.url)) {
      return consoleFallback(reply);
    }
    throw notFound(request);
  });

  await app.ready();
  return app;
}
