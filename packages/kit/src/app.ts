import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
  type onResponseHookHandler,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';
import { apiKeyVerifier } from './auth.js';
import type { BaseConfig } from './config.js';
import { databaseInputProblem, databaseRefusal } from './db.js';
import { AppError, errorDocument } from './errors.js';
import { type HealthCheck, registerHealth } from './health.js';
import { INSTANCE_ID } from './instance.js';
import { assertAcceptable, assertRequestMediaType, ErrorDocument, MEDIA_TYPE } from './jsonapi.js';
import { capConnections, serverTimeouts } from './limits.js';
import { redactUrl } from './logger.js';
import { cachedMetricsText, createHttpMetrics, type HttpMetrics } from './metrics.js';
import { registerRequestDeadline } from './request-deadline.js';
import { nameRequestSpan } from './tracing.js';
import { jsonHoldsMoreThan, MAX_BODY_VALUES, validationProblems } from './validation.js';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

declare module 'fastify' {
  interface FastifyRequest {
    /** A stable, non-secret identity of the API key that authenticated the request. */
    clientId: string;
  }
}

export interface KitAppOptions {
  service: string;
  title: string;
  description: string;
  /** `requestTimeoutMs` defaults to 10 s. */
  config: Pick<BaseConfig, 'apiKeys' | 'http' | 'metricsCacheMs'> &
    Partial<Pick<BaseConfig, 'requestTimeoutMs'>>;
  logger: Logger;
  /** Attributes that clients may read but never send: sending one is a 400 that names it. */
  readOnlyAttributes: string[];
  health: Record<string, HealthCheck>;
}

export const BODY_LIMIT = 1024 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
const STATUSES = new Set([400, 401, 403, 404, 406, 409, 413, 415, 422, 429, 500, 503]);

/** The methods a route may have, in the order an `Allow` header lists them. */
const METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT'] as const;

const isApi = (url: string) => url === '/api' || url.startsWith('/api/') || url.startsWith('/api?');

/**
 * Judged by the matched route, not the raw URL: the router percent-decodes the path, so
 * `/%61pi/products` reaches an `/api` route while its raw URL does not start with `/api`.
 */
const isApiRequest = (request: FastifyRequest) => isApi(request.routeOptions.url ?? request.url);

/** The request's own stream failed with this error: the body stopped before its end. */
const isClientAbort = (error: unknown, request: FastifyRequest) =>
  error != null && request.raw.errored === error;

const TOO_MANY_VALUES = new AppError(400, 'too_many_values', {
  detail: `El cuerpo de la petición contiene más de ${MAX_BODY_VALUES} valores`,
  source: { pointer: '' },
});

const CLIENT_ABORTED = new AppError(400, 'client_aborted', {
  detail: 'La conexión se cerró antes de recibir el cuerpo completo de la petición',
});

/** A client's `x-request-id` when it is a sensible one (it ends up in every log line), else a fresh one. */
export function requestIdOf(req: RawRequestDefaultExpression): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * The `onResponse` hook of every app: the request counted and timed by route and status, and one log
 * line of method, path (keys in the query redacted) and status. No header is logged, the API key
 * least of all.
 */
export function countAndLogResponse(metrics: HttpMetrics): onResponseHookHandler {
  return (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.duration.observe(labels, reply.elapsedTime / 1000);
    request.log.info(
      {
        method: request.method,
        url: redactUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request completed',
    );
    done();
  };
}
export function answerFrameworkError(error: FastifyError, requestId: string, reply: FastifyReply): void {
  const appError = toAppError(error);
  // A Buffer body keeps the media type bare (no onSend hook runs here to strip Fastify's charset).
  reply
    .header('x-request-id', requestId)
    .header('x-instance-id', INSTANCE_ID)
    .code(appError.status)
    .type(MEDIA_TYPE);
  reply.send(Buffer.from(JSON.stringify(errorDocument(appError.toErrorObjects()))));
}

/**
 * Builds the Fastify instance both services start from: logging with request ids, JSON:API content
 * negotiation and API-key auth on `/api`, the one error handler, `/health`, `/metrics` and `/docs`.
 * The service registers its routes on the returned app.
 */
export async function createKitApp(options: KitAppOptions): Promise<{ app: App; metrics: HttpMetrics }> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    ...serverTimeouts(options.config.http),
    // One log line per request is written in onResponse; Fastify's two default lines would double it.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: requestIdOf,
    // Long path segments reach our validator (400) instead of Fastify's 414.
    routerOptions: { maxParamLength: 8192 },
    // URLs the router cannot decode never reach the hooks or the error handler; answer them in JSON:API too.
    frameworkErrors: (error, request, reply) =>
      answerFrameworkError(error, request.id, reply as FastifyReply),
    ajv: {
      customOptions: {
        allErrors: true,
        // Unknown members are errors (400), not silently dropped; bodies are never coerced.
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        multipleOfPrecision: 9,
        // OpenAPI's `example` annotates schemas for /docs and the Postman collection; it validates nothing.
        keywords: ['example'],
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const metrics = createHttpMetrics(options.service);
  capConnections(app.server, options.config.http, metrics.refusedConnections);
  const verifyKey = apiKeyVerifier(options.config.apiKeys);
  const readOnly = new Set(options.readOnlyAttributes);

  registerRequestDeadline(app, {
    timeoutMs: options.config.requestTimeoutMs ?? 10_000,
    registry: metrics.registry,
    toAppError: (error) => toAppError(error, readOnly),
  });
  app.addSchema(ErrorDocument);
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  // Clients send their JSON Content-Type on every request: a DELETE without a body is no empty-body 400.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    [MEDIA_TYPE, 'application/json'],
    { parseAs: 'string' },
    (request, body: string, done) => {
      if (body === '' && request.method !== 'POST' && request.method !== 'PATCH')
        return done(null, undefined);
      // Validation collects every problem, so its cost, like parsing's, grows with the values a
      // body holds: 1 MiB of unknown members cost seconds of CPU. No body of the API comes near
      // the bound, so one past it is refused before it is parsed.
      if (jsonHoldsMoreThan(body, MAX_BODY_VALUES)) return done(TOO_MANY_VALUES, undefined);
      parseJson(request, body, done);
    },
  );

  // The three hooks run on every request: callback-style, they cost no promise each.
  app.addHook('onRequest', (request, reply, done) => {
    // Which instance answered, on every response (errors included): behind a balancer, the way to
    // find the log lines of a request.
    reply.header('x-request-id', request.id).header('x-instance-id', INSTANCE_ID);
    if (request.routeOptions.url) nameRequestSpan(request.method, request.routeOptions.url);
    if (!isApiRequest(request)) return done();
    try {
      request.clientId = verifyKey(request.headers['x-api-key']);
      // A request no route takes is answered 404 or 405 whatever its media types say.
      if (request.routeOptions.url === undefined) return done();
      if (request.method === 'POST' || request.method === 'PATCH') {
        assertRequestMediaType(request.headers['content-type']);
      }
      assertAcceptable(request.headers.accept);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    if (isApiRequest(request) && reply.statusCode !== 204) reply.header('content-type', MEDIA_TYPE);
    // A 304 carries no body: its serialised `null` would otherwise be announced as Content-Length 4,
    // which strict HTTP clients (undici, the gateway's) refuse as a body that never came.
    done(null, reply.statusCode === 304 ? null : payload);
  });

  app.addHook('onResponse', countAndLogResponse(metrics));

  app.setNotFoundHandler(async (request) => {
    const path = request.url.split('?', 1)[0] ?? '';
    const allowed = METHODS.filter((method) => app.findRoute({ method, url: path }) !== null);
    if (allowed.length > 0) {
      const allow = allowed.join(', ');
      throw new AppError(
        405,
        'method_not_allowed',
        { detail: `El método ${request.method} no está permitido en esta ruta; se admite: ${allow}` },
        { headers: { allow } },
      );
    }
    throw new AppError(404, 'route_not_found', {
      detail: `No existe la ruta ${request.method} ${redactUrl(request.url)}`,
    });
  });

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (isClientAbort(error, request)) {
      // The client hung up, or a timeout cut it off, before its body arrived: no outage, and the
      // answer reaches nobody. Its code (ECONNRESET) would otherwise read as a database failure.
      metrics.clientAborts.inc();
      request.log.info({ code: error.code }, 'client closed the connection before its body arrived');
      return reply.code(400).type(MEDIA_TYPE).send(errorDocument(CLIENT_ABORTED.toErrorObjects()));
    }
    const appError = toAppError(error, readOnly);
    if (appError.status >= 500) {
      request.log.error(
        { err: error },
        appError.status === 503 ? 'dependency unavailable' : 'unexpected error',
      );
    } else {
      request.log.info({ status: appError.status, code: appError.code }, appError.message);
    }
    if (appError.headers) reply.headers(appError.headers);
    return reply.code(appError.status).type(MEDIA_TYPE).send(errorDocument(appError.toErrorObjects()));
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: options.title, description: options.description, version: '1.0.0' },
      components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } } },
    },
    transform: ({ schema, url }) => {
      if (!isApi(url)) return { schema, url };
      return {
        schema: { ...schema, consumes: [MEDIA_TYPE], produces: [MEDIA_TYPE], security: [{ apiKey: [] }] },
        url,
      };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  registerHealth(app, options.health);
  const metricsText = cachedMetricsText(metrics.registry, options.config.metricsCacheMs);
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metricsText();
  });

  return { app, metrics };
}

/** The one place where any error becomes an HTTP status and JSON:API error objects. */
export function toAppError(error: unknown, readOnly: ReadonlySet<string> = new Set()): AppError {
  if (error instanceof AppError) return error;
  // Anything can be thrown, `undefined` and `null` included.
  const fastifyError = (error ?? {}) as FastifyError;
  if (fastifyError.validation) {
    return new AppError(
      400,
      'validation_failed',
      validationProblems(fastifyError.validation, fastifyError.validationContext ?? 'body', readOnly),
    );
  }
  const refusal = databaseRefusal(error);
  if (refusal) return refusal;
  const inputProblem = databaseInputProblem(error);
  if (inputProblem) return inputProblem;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(413, 'body_too_large', {
        detail: 'El cuerpo de la petición supera el límite de 1 MiB',
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(415, 'unsupported_media_type', {
        detail: `El Content-Type debe ser ${MEDIA_TYPE}`,
        source: { header: 'Content-Type' },
      });
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AppError(400, 'invalid_url', { detail: 'La URL de la petición no es válida' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError(400, 'empty_body', { detail: 'El cuerpo de la petición está vacío' });
  }
  const status = fastifyError.statusCode;
  if (error instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new AppError(400, 'invalid_json', { detail: 'El cuerpo de la petición no es un JSON válido' });
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError(STATUSES.has(status) ? status : 400, 'bad_request', {
      detail: 'La petición no es válida',
    });
  }
  return new AppError(500, 'internal_error', { detail: 'Error interno del servidor' }, { cause: error });
}
