import { expect } from 'vitest';

export const JSONAPI = 'application/vnd.api+json';

/** The standard reason phrases, written out rather than read from node:http, which the code uses. */
export const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export type Source = { pointer: string } | { parameter: string } | { header: string };

export interface ErrorObject {
  status: string;
  title: string;
  detail: string;
  code?: string;
  source?: Source;
  meta?: Record<string, unknown>;
}

/** The parts of an answer the checks read: app.inject's and fetch's answers both map onto it. */
export interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** app.inject's response as an Answer. */
export const answerOf = (res: {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}): Answer => ({
  status: res.statusCode,
  contentType: res.headers['content-type'] as string | undefined,
  body: res.body,
});

/**
 * Asserts a JSON:API error document with the given status: the media type, `errors` as the only
 * top-level member, every error object's `status`, `title` and `detail`, and, when given, exactly
 * the expected `source` members (one error object per problem).
 */
export function expectErrorDocument(
  answer: Answer,
  status: number,
  sources?: Source | Source[],
): ErrorObject[] {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.contentType).toBe(JSONAPI);
  const body = JSON.parse(answer.body) as { errors: ErrorObject[] };
  expect(Object.keys(body)).toEqual(['errors']);
  expect(body.errors.length).toBeGreaterThan(0);
  for (const error of body.errors) {
    expect(error.status).toBe(String(status));
    expect(error.title).toBe(TITLES[status]);
    expect(typeof error.detail).toBe('string');
    expect(error.detail.trim().length).toBeGreaterThan(0);
  }
  if (sources !== undefined) {
    const expected = Array.isArray(sources) ? sources : [sources];
    const actual = body.errors.map((e) => e.source);
    expect(actual).toHaveLength(expected.length);
    expect(actual).toEqual(expect.arrayContaining(expected));
  }
  return body.errors;
}

/**
 * What is wrong with an answer that should be a JSON:API error document (docs/api.md §1), or undefined
 * when it is one — the same rules as `expectErrorDocument`, as a value, for generated requests that
 * report the first offending answer. A 5xx must not expose stack traces or SQL either.
 */
export function errorDocumentProblem(answer: Answer): string | undefined {
  if (!TITLES[answer.status] || answer.status < 400) return `status ${answer.status} is not an error status`;
  if (answer.contentType !== JSONAPI) return `content-type ${answer.contentType}`;
  let document: unknown;
  try {
    document = JSON.parse(answer.body);
  } catch {
    return `body is not JSON: ${answer.body.slice(0, 200)}`;
  }
  const errors = (document as { errors?: unknown } | null)?.errors;
  if (Object.keys(document ?? {}).join() !== 'errors' || !Array.isArray(errors) || errors.length === 0) {
    return `not an error document: ${answer.body.slice(0, 200)}`;
  }
  for (const error of errors as Record<string, unknown>[]) {
    if (error.status !== String(answer.status)) return `error status ${String(error.status)}`;
    if (error.title !== TITLES[answer.status]) return `error title ${String(error.title)}`;
    if (typeof error.detail !== 'string' || error.detail.trim() === '') return 'error without detail';
    if (answer.status >= 500 && / at \S+ \(|SELECT |INSERT |UPDATE |node_modules/.test(answer.body)) {
      return `leaks internals: ${answer.body.slice(0, 200)}`;
    }
  }
  return undefined;
}
