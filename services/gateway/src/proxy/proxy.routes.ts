import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type UpstreamName, upstreamError } from './proxy.errors.js';

/**
 * Which service answers which paths. A prefix covers itself and everything below it, query
 * strings included (`/api/products`, `/api/products?page[size]=5`, `/api/products/7`) and never a
 * longer word (`/api/productsx` is no route).
 */
export const ROUTES: ReadonlyArray<{ prefix: string; upstream: UpstreamName; stream?: true }> = [
  { prefix: '/api/products', upstream: 'products' },
  { prefix: '/api/inventory', upstream: 'inventory' },
  { prefix: '/api/purchases', upstream: 'inventory' },
  { prefix: '/api/orders', upstream: 'inventory' },
  { prefix: '/api/reservations', upstream: 'inventory' },
  { prefix: '/api/events', upstream: 'inventory', stream: true },
];

export interface ProxyOptions {
  upstream: UpstreamName;
  /** The service's origin, e.g. `http://127.0.0.1:3002`. */
  url: string;
  prefixes: string[];
  timeoutMs: number;
  connections: number;
  /** Long-lived responses (server-sent events): no bound on the time between two parts of the body. */
  stream: boolean;
}

/**
 * Forwards every method on the given prefixes to one service, unchanged: the path and query as
 * sent, the request body streamed (never parsed here, so never re-serialised), the response status,
 * headers and body streamed back. @fastify/reply-from drops the hop-by-hop headers both ways.
 *
 * Each call builds its own encapsulated plugin, hence its own keep-alive pool: the event streams,
 * which hold a connection for as long as a client listens, get a pool apart from the API's.
 */
export function proxyRoutes(options: ProxyOptions) {
  return async (scope: FastifyInstance) => {
    await scope.register(replyFrom, {
      base: options.url,
      undici: {
        connections: options.connections,
        pipelining: 1,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.stream ? 0 : options.timeoutMs,
      },
      // Closing the app closes the pool, so a stopped gateway leaves no socket open.
      destroyAgent: true,
      // One line per request is logged by the gateway itself.
      disableRequestLogging: true,
    });
    const forward = (request: FastifyRequest, reply: FastifyReply) =>
      reply.from(request.url, {
        rewriteRequestHeaders: (request, headers) => ({
          ...headers,
          // The service logs this request under the gateway's id (one id end to end) and echoes it.
          'x-request-id': request.id,
          'x-forwarded-for': forwardedFor(headers['x-forwarded-for'], request.ip),
          'x-forwarded-proto': request.protocol,
          ...(request.headers.host ? { 'x-forwarded-host': request.headers.host } : {}),
        }),
        rewriteHeaders: withoutHopByHop,
        onError: (reply, { error }) => reply.send(upstreamError(options.upstream, error)),
        // Never retry: the services' statuses reach the client unchanged (a GET answered 503 is
        // retried ten times by default), and the services retry their own calls where that is safe.
        retryDelay: () => null,
      });
    for (const prefix of options.prefixes) {
      scope.all(prefix, forward);
      scope.all(`${prefix}/*`, forward);
    }
  };
}

/**
 * Headers that describe the connection between the gateway and the service, not the answer: the
 * client's connection is the gateway's own (its keep-alive timeout, for one, is not the service's).
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'trailer', 'te'];

function withoutHopByHop(headers: Record<string, string | string[] | undefined>) {
  const listed = typeof headers.connection === 'string' ? headers.connection.toLowerCase().split(',') : [];
  const result = { ...headers };
  for (const name of [...HOP_BY_HOP, ...listed.map((name) => name.trim())]) delete result[name];
  return result;
}

function forwardedFor(previous: string | string[] | undefined, ip: string): string {
  const before = Array.isArray(previous) ? previous.join(', ') : previous;
  return before ? `${before}, ${ip}` : ip;
}
