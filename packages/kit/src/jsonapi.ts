import contentType from 'content-type';
import { type TProperties, type TSchema, Type } from 'typebox';
import { AppError } from './errors.js';

export const MEDIA_TYPE = 'application/vnd.api+json';

/** JSON:API 1.1 lets clients add only these two parameters to its media type. */
const ALLOWED_MEDIA_PARAMS = new Set(['ext', 'profile']);

function hasOnlyAllowedParams(parameters: Record<string, string>): boolean {
  return Object.keys(parameters).every((name) => ALLOWED_MEDIA_PARAMS.has(name));
}

/** 415 unless the body is declared as the JSON:API media type with nothing but `ext`/`profile`. */
export function assertRequestMediaType(header: string | undefined): void {
  const refuse = () =>
    new AppError(415, 'unsupported_media_type', {
      detail: `El Content-Type debe ser ${MEDIA_TYPE} (solo se admiten los parámetros ext y profile)`,
      source: { header: 'Content-Type' },
    });
  if (!header) throw refuse();
  let parsed: contentType.ParsedMediaType;
  try {
    parsed = contentType.parse(header);
  } catch {
    throw refuse();
  }
  if (parsed.type !== MEDIA_TYPE || !hasOnlyAllowedParams(parsed.parameters)) throw refuse();
}

/** Splits an Accept header on the commas that are not inside a quoted parameter value. */
function splitAccept(header: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const char of header) {
    if (char === '"') quoted = !quoted;
    if (char === ',' && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/**
 * 406 when the client asks for JSON:API and every JSON:API entry of Accept carries a parameter we
 * cannot honour. Entries we cannot parse are ignored rather than refused: Accept is a preference.
 */
export function assertAcceptable(header: string | undefined): void {
  if (!header) return;
  const jsonApiEntries: Record<string, string>[] = [];
  for (const entry of splitAccept(header)) {
    try {
      const parsed = contentType.parse(entry);
      if (parsed.type === MEDIA_TYPE) {
        const { q: _q, ...parameters } = parsed.parameters;
        jsonApiEntries.push(parameters);
      }
    } catch {
      // An unparsable preference is not a reason to refuse the request.
    }
  }
  if (jsonApiEntries.length > 0 && !jsonApiEntries.some(hasOnlyAllowedParams)) {
    throw new AppError(406, 'not_acceptable', {
      detail: `El tipo ${MEDIA_TYPE} solo admite los parámetros ext y profile en Accept`,
      source: { header: 'Accept' },
    });
  }
}

/** Ids travel as strings of positive integers that fit a PostgreSQL `integer`. */
export const MAX_INT = 2_147_483_647;
const ID_PATTERN = /^[1-9][0-9]{0,9}$/;

export function parsePositiveInt(raw: string): number | undefined {
  if (!ID_PATTERN.test(raw)) return undefined;
  const value = Number(raw);
  return value <= MAX_INT ? value : undefined;
}

export function parseIdParam(raw: string, parameter = 'id'): number {
  const id = parsePositiveInt(raw);
  if (id === undefined) {
    throw new AppError(400, 'invalid_parameter', {
      detail: `El identificador debe ser un entero positivo menor o igual que ${MAX_INT}`,
      source: { parameter },
    });
  }
  return id;
}

export interface ResourceObject<A> {
  type: string;
  id: string;
  attributes: A;
  relationships?: Record<string, { data: { type: string; id: string } }>;
  links?: { self: string };
}

/* ---------- Schemas shared by the services' route definitions ---------- */

/** A string that PostgreSQL can store: no NUL character (text columns refuse it). */
export const Text = (options: {
  minLength?: number;
  maxLength: number;
  description?: string;
  example?: string;
}) => Type.String({ ...options, pattern: '^[^\\u0000]*$' });

export const IdString = Type.String({
  pattern: '^[1-9][0-9]{0,9}$',
  description: 'Entero positivo como texto',
});

export const IdParams = Type.Object({
  id: Type.String({ description: 'Identificador (entero positivo)', example: '1' }),
});

const Source = Type.Object({
  pointer: Type.Optional(Type.String()),
  parameter: Type.Optional(Type.String()),
  header: Type.Optional(Type.String()),
});

export const ErrorDocument = Type.Object(
  {
    errors: Type.Array(
      Type.Object({
        status: Type.String(),
        title: Type.String(),
        code: Type.Optional(Type.String()),
        detail: Type.String(),
        source: Type.Optional(Source),
        meta: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      }),
    ),
  },
  { $id: 'ErrorDocument', description: 'Documento de error JSON:API' },
);

export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, Type.Ref('ErrorDocument')])) as Record<
    number,
    ReturnType<typeof Type.Ref>
  >;

export const SelfLinks = Type.Object({ self: Type.String() });

/** The answer to a GET whose If-None-Match names the current ETag: no body. */
export const NotModified = Type.Null({
  description: 'No ha cambiado desde la versión indicada en If-None-Match',
});

export const PaginationLinks = Type.Object({
  self: Type.String(),
  first: Type.String(),
  last: Type.Optional(Type.String()),
  prev: Type.Union([Type.String(), Type.Null()]),
  next: Type.Union([Type.String(), Type.Null()]),
});

/** Links of a keyset-paginated collection (see `cursorPage` in query.ts): forward only. */
export const CursorLinks = Type.Object({
  self: Type.String(),
  first: Type.String(),
  prev: Type.Null(),
  next: Type.Union([Type.String(), Type.Null()]),
});

/** Query of a keyset-paginated collection: its filters, `page[size]` and `page[after]`. */
export const CursorQuery = <F extends TProperties>(filters: F, after: string) =>
  Type.Object(
    {
      ...filters,
      'page[size]': Type.Optional(
        Type.String({ description: 'Tamaño de página (1–100, por defecto 20)', example: '20' }),
      ),
      'page[after]': Type.Optional(Type.String({ description: after, example: '100' })),
    },
    { additionalProperties: false },
  );

export const Relationship = (type: string) =>
  Type.Object({ data: Type.Object({ type: Type.Literal(type), id: Type.String() }) });

/**
 * A request document for one resource. The `type` and `id` members are checked before the schema
 * (see `resourceIdentityHook`) so that a wrong type is a 409 and a client id a 403, as JSON:API asks.
 */
export const RequestDocument = <A extends TSchema>(
  type: string,
  attributes: A,
  withId: boolean,
  example?: Record<string, unknown>,
) =>
  Type.Object(
    {
      data: Type.Object(
        {
          type: Type.Literal(type),
          ...(withId ? { id: IdString } : {}),
          attributes,
        },
        { additionalProperties: false },
      ),
    },
    {
      additionalProperties: false,
      // Shown by /docs and copied into the generated Postman collection.
      ...(example
        ? { example: { data: { type, ...(withId ? { id: '1' } : {}), attributes: example } } }
        : {}),
    },
  );

/**
 * The identity rules of a request document that JSON:API answers with statuses other than 400:
 * a `type` that does not match the endpoint (409), a client-generated id on create (403), and on
 * update an id other than the one in the path (409).
 */
export function checkResourceIdentity(
  body: unknown,
  expected: { type: string; mode: 'create' } | { type: string; mode: 'update'; id: string },
): void {
  if (typeof body !== 'object' || body === null) return;
  const data = (body as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return;
  const { type, id } = data as { type?: unknown; id?: unknown };
  if (typeof type === 'string' && type !== expected.type) {
    throw new AppError(409, 'type_mismatch', {
      detail: `El tipo '${type}' no corresponde a este endpoint (se esperaba '${expected.type}')`,
      source: { pointer: '/data/type' },
    });
  }
  if (expected.mode === 'create' && id !== undefined) {
    throw new AppError(403, 'client_id_forbidden', {
      detail: 'El servidor asigna los identificadores: no se admite un id en la creación',
      source: { pointer: '/data/id' },
    });
  }
  if (expected.mode === 'update' && typeof id === 'string' && id !== expected.id) {
    throw new AppError(409, 'id_mismatch', {
      detail: `El id del documento ('${id}') no coincide con el de la ruta ('${expected.id}')`,
      source: { pointer: '/data/id' },
    });
  }
}
