import { STATUS_CODES } from 'node:http';

/** Where in the request a problem lies: a JSON pointer into the body, or a query/path parameter. */
export type ErrorSource = { pointer: string } | { parameter: string } | { header: string };

export interface ErrorObject {
  status: string;
  title: string;
  detail: string;
  code?: string;
  source?: ErrorSource;
  meta?: Record<string, unknown>;
}

export interface Problem {
  detail: string;
  source?: ErrorSource;
  /** This problem's own meta (one short line of several, say); the error's `meta` otherwise. */
  meta?: Record<string, unknown>;
}

/**
 * The one error type of the services. Everything a handler refuses is thrown as an AppError and
 * turned into a JSON:API error document by the error handler of the kit's app builder — nowhere else.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problems: Problem[];
  readonly meta: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    code: string,
    problems: Problem | Problem[],
    options: { meta?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.map((p) => p.detail).join('; '), { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.problems = list;
    this.meta = options.meta;
    this.headers = options.headers;
  }

  toErrorObjects(): ErrorObject[] {
    return this.problems.map((p) => {
      const meta = p.meta ?? this.meta;
      return {
        status: String(this.status),
        title: titleOf(this.status),
        code: this.code,
        detail: p.detail,
        ...(p.source ? { source: p.source } : {}),
        ...(meta ? { meta } : {}),
      };
    });
  }
}

export function titleOf(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

export const badRequest = (problems: Problem | Problem[], code = 'invalid_request') =>
  new AppError(400, code, problems);

export const notFound = (detail: string) => new AppError(404, 'not_found', { detail });

export const conflict = (detail: string, code = 'conflict', meta?: Record<string, unknown>) =>
  new AppError(409, code, { detail }, meta ? { meta } : {});

/**
 * Every 503 says when to try again (RFC 9110 §10.2.3): the service refused for now, out of time,
 * load or a dependency, and wrote nothing it does not report.
 */
export const RETRY_AFTER: Readonly<Record<string, string>> = { 'retry-after': '1' };

export const serviceUnavailable = (detail: string, cause?: unknown, code = 'service_unavailable') =>
  new AppError(503, code, { detail }, { cause, headers: { ...RETRY_AFTER } });

export function errorDocument(errors: ErrorObject[]) {
  return { errors };
}
