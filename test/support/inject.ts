import type { App } from '@catalogo/kit/app';

export const TEST_API_KEY = 'test-key';
export type InjectResponse = Awaited<ReturnType<App['inject']>>;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'HEAD' | 'PUT';

/**
 * Sends one request with the test key through `app.inject`. A string body goes as it is, anything
 * else as JSON; the JSON:API Content-Type is added only when there is a body. `headers` replaces
 * the defaults, and a header set to undefined is not sent at all.
 */
export function send(
  app: App,
  method: Method,
  url: string,
  options: { body?: unknown; headers?: Record<string, string | string[] | undefined> } = {},
): Promise<InjectResponse> {
  const defaults: Record<string, string> =
    options.body === undefined
      ? { 'x-api-key': TEST_API_KEY }
      : { 'x-api-key': TEST_API_KEY, 'content-type': 'application/vnd.api+json' };
  const merged = { ...defaults, ...options.headers };
  const sent = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as Record<
    string,
    string | string[]
  >;
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  return app.inject({ method, url, headers: sent, ...(payload === undefined ? {} : { payload }) });
}
