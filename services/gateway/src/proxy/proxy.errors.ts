import { AppError, RETRY_AFTER } from '@catalogo/kit/errors';

/** The service a request was forwarded to, as the Spanish error details name it. */
export const UPSTREAM_NAMES = { products: 'productos', inventory: 'inventario' } as const;
export type UpstreamName = keyof typeof UPSTREAM_NAMES;

/** The request never reached the service: nothing was done there, and a retry is safe. */
const NOT_REACHED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The service took longer than UPSTREAM_TIMEOUT_MS to start (or go on) answering. */
const TIMED_OUT = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'FST_REPLY_FROM_GATEWAY_TIMEOUT',
]);

/** Every error code along the chain: the proxy library wraps the HTTP client's error in `cause`. */
function codesOf(error: unknown, codes = new Set<string>(), depth = 0): Set<string> {
  if (error === null || typeof error !== 'object' || depth > 4) return codes;
  const { code, cause, errors } = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') codes.add(code);
  codesOf(cause, codes, depth + 1);
  // A host name with several addresses fails with one error per address.
  if (Array.isArray(errors)) for (const inner of errors) codesOf(inner, codes, depth + 1);
  return codes;
}

/**
 * What a client is told when the service behind a route did not answer:
 * - 503 when the request never reached it (refused, unknown host, no connection in time) or it did
 *   not answer within the timeout. Both are "try again later", as the services' own 503s are.
 * - 502 when the connection broke after the request was sent and before a whole answer came back:
 *   the service may have done the work, so the client should retry only with an Idempotency-Key
 *   (or read before retrying).
 * Every one carries Retry-After.
 */
export function upstreamError(upstream: UpstreamName, error: unknown): AppError {
  const service = `El servicio de ${UPSTREAM_NAMES[upstream]}`;
  const codes = codesOf(error);
  const headers = { ...RETRY_AFTER };
  const meta = { upstream };
  if ([...codes].some((code) => NOT_REACHED.has(code))) {
    return new AppError(
      503,
      'upstream_unavailable',
      { detail: `${service} no está disponible; vuelva a intentarlo` },
      { headers, meta, cause: error },
    );
  }
  if ([...codes].some((code) => TIMED_OUT.has(code))) {
    return new AppError(
      503,
      'upstream_timeout',
      { detail: `${service} no respondió a tiempo; vuelva a intentarlo` },
      { headers, meta, cause: error },
    );
  }
  return new AppError(
    502,
    'upstream_failed',
    {
      detail: `${service} cortó la conexión sin dar una respuesta completa; puede que la petición se haya aplicado`,
    },
    { headers, meta, cause: error },
  );
}
