import { Jsona } from 'jsona';

/** One error object of a JSON:API error document, as the services send them. */
export interface ApiErrorObject {
  status?: string;
  code?: string;
  title?: string;
  detail?: string;
  source?: { pointer?: string; parameter?: string; header?: string };
  meta?: Record<string, unknown>;
}

/** A refused request (any non-2xx answer), or none at all (`status` 0: the network failed). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: ApiErrorObject[],
  ) {
    super(errors[0]?.detail ?? `HTTP ${status}`);
    this.name = 'ApiError';
  }
}

export interface Page<T> {
  data: T;
  meta?: Record<string, unknown>;
  links?: Record<string, string | null>;
  etag?: string;
}

interface RequestOptions {
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

const MEDIA_TYPE = 'application/vnd.api+json';
// Every request is answered within this time or abandoned: the services bound their own answers
// well below it, so reaching it means the network or a proxy is stuck.
const REQUEST_TIMEOUT_MS = 15_000;

// Documents are read and written by jsona: attributes flattened onto the model, relationships
// resolved from `included` (and left as `{type, id}` when not included).
const formatter = new Jsona();
type JsonApiBody = Exclude<Parameters<Jsona['deserialize']>[0], string>;

/** A resource to send: `type`, `id` on PATCH, and the attributes. */
export type Outgoing = { type: string; id?: string } & Record<string, unknown>;

export function toDocument(resource: Outgoing): Record<string, unknown> {
  return formatter.serialize({ stuff: resource }) as Record<string, unknown>;
}

export interface ApiClient {
  get<T>(path: string, options?: RequestOptions): Promise<Page<T>>;
  post<T>(path: string, resource: Outgoing, options?: RequestOptions): Promise<Page<T>>;
  patch<T>(path: string, resource: Outgoing, options?: RequestOptions): Promise<Page<T>>;
  delete(path: string): Promise<void>;
  text(path: string): Promise<{ status: number; body: string }>;
  key: string;
}

async function errorsOf(response: Response): Promise<ApiErrorObject[]> {
  try {
    const body = (await response.json()) as { errors?: ApiErrorObject[] };
    if (Array.isArray(body.errors) && body.errors.length > 0) return body.errors;
  } catch {
    // A proxy's HTML page or an empty body: only the status is known.
  }
  return [{ status: String(response.status) }];
}

/** Calls under `/api` with the person's key; `text` reads the keyless operational endpoints. */
export function createApiClient(key: string, base = ''): ApiClient {
  async function send<T>(method: string, path: string, options: RequestOptions = {}): Promise<Page<T>> {
    const headers: Record<string, string> = { Accept: MEDIA_TYPE, 'X-API-Key': key, ...options.headers };
    if (options.body) headers['Content-Type'] = MEDIA_TYPE;
    const signal = options.signal
      ? AbortSignal.any([options.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
      : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    let response: Response;
    try {
      response = await fetch(base + path, {
        method,
        headers,
        body: options.body ? JSON.stringify(options.body) : undefined,
        signal,
      });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw new ApiError(0, [{ detail: err instanceof Error ? err.message : String(err) }]);
    }
    if (!response.ok) throw new ApiError(response.status, await errorsOf(response));
    if (response.status === 204) return { data: undefined as T };
    const body = (await response.json()) as JsonApiBody & {
      meta?: Record<string, unknown>;
      links?: Record<string, string | null>;
    };
    return {
      data: formatter.deserialize(body) as T,
      meta: body.meta,
      links: body.links,
      etag: response.headers.get('ETag') ?? undefined,
    };
  }

  return {
    key,
    get: (path, options) => send('GET', path, options),
    post: (path, resource, options) => send('POST', path, { ...options, body: toDocument(resource) }),
    patch: (path, resource, options) => send('PATCH', path, { ...options, body: toDocument(resource) }),
    delete: async (path) => {
      await send('DELETE', path);
    },
    text: async (path) => {
      try {
        const response = await fetch(base + path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        return { status: response.status, body: await response.text() };
      } catch (err) {
        throw new ApiError(0, [{ detail: err instanceof Error ? err.message : String(err) }]);
      }
    },
  };
}
