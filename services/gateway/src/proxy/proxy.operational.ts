import { AppError, RETRY_AFTER } from '@catalogo/kit/errors';
import type { FastifyInstance } from 'fastify';
import { UPSTREAM_NAMES, type UpstreamName } from './proxy.errors.js';

/** Bounded like the gateway's own health checks: a stuck service is reported, not waited for. */
const OPERATIONAL_TIMEOUT_MS = 2_000;

/**
 * `GET /services/{products|inventory}/{health|metrics}`: each service's own `/health` and
 * `/metrics`, read-only and keyless as they are on the service, so the console's system screen can
 * show the database checks, the circuit breaker and the outbox backlog through the one entry point.
 * The answer (status, content type, body) is the service's; a service that does not answer in time
 * is a 503 (a read changes nothing, so unlike a forwarded request there is no 502 case).
 */
export function operationalRoutes(urls: Record<UpstreamName, string>) {
  return async (scope: FastifyInstance) => {
    for (const upstream of Object.keys(urls) as UpstreamName[]) {
      for (const endpoint of ['health', 'metrics']) {
        scope.get(`/services/${upstream}/${endpoint}`, async (_request, reply) => {
          let response: Response;
          try {
            response = await fetch(new URL(`/${endpoint}`, urls[upstream]), {
              signal: AbortSignal.timeout(OPERATIONAL_TIMEOUT_MS),
            });
          } catch (error) {
            throw new AppError(
              503,
              'upstream_unavailable',
              {
                detail: `El servicio de ${UPSTREAM_NAMES[upstream]} no está disponible; vuelva a intentarlo`,
              },
              { headers: { ...RETRY_AFTER }, meta: { upstream }, cause: error },
            );
          }
          reply.code(response.status).type(response.headers.get('content-type') ?? 'text/plain');
          return Buffer.from(await response.arrayBuffer());
        });
      }
    }
  };
}
