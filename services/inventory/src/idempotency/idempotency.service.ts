import { createHash, randomUUID } from 'node:crypto';
import type { Queryable } from '@catalogo/kit/db';
import { AppError, errorDocument } from '@catalogo/kit/errors';
import { MEDIA_TYPE } from '@catalogo/kit/jsonapi';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import {
  completeClaim,
  findKey,
  insertClaim,
  type KeyScope,
  releaseClaim,
  type StoredResponse,
  takeOverClaim,
} from './idempotency.repository.js';

export type { StoredResponse };

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** 1–255 visible ASCII characters (docs/api.md §3). */
const KEY_PATTERN = /^[\x21-\x7E]{1,255}$/;
const source = { header: IDEMPOTENCY_HEADER };

/** The request's key; undefined when it sent none. A malformed key (or two of them) is a 400. */
export function parseIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  // Node joins repeated headers with ", ", which the pattern refuses, as a request with two keys deserves.
  if (typeof value === 'string' && KEY_PATTERN.test(value)) return value;
  throw new AppError(400, 'invalid_idempotency_key', {
    detail: 'La cabecera Idempotency-Key debe tener entre 1 y 255 caracteres ASCII visibles',
    source,
  });
}

/**
 * Sends a stored response as its exact bytes, bypassing the schema serializer, with its Location and
 * `Idempotent-Replayed: true` when it is a replay.
 */
export function sendStored(reply: FastifyReply, response: StoredResponse, replayed = false) {
  if (replayed) reply.header('idempotent-replayed', 'true');
  if (response.location !== null) reply.header('location', response.location);
  return reply.code(response.status).type(MEDIA_TYPE).send(response.body);
}

/** JSON with object members in code-point order at every level: equal documents, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.keys(value)
      .sort()
      .map((name) => `${JSON.stringify(name)}:${canonicalJson((value as Record<string, unknown>)[name])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Identifies "the same request": the endpoint and the parsed body, so that member order and
 * whitespace do not make a retry look different.
 */
export function fingerprintOf(endpoint: string, body: unknown): string {
  return createHash('sha256')
    .update(`${endpoint}\n${canonicalJson(body)}`)
    .digest('hex');
}

export const inFlight = () =>
  new AppError(
    409,
    'idempotency_key_in_flight',
    {
      detail: 'Ya se está procesando una petición con esta Idempotency-Key; reinténtela en unos segundos',
      source,
    },
    { headers: { 'retry-after': '1' } },
  );

const keyReused = () =>
  new AppError(422, 'idempotency_key_reused', {
    detail: 'Esta Idempotency-Key ya se usó con una petición distinta',
    source,
  });

/** An error as the response document the error handler would send, serialised once to be stored. */
export function errorResponse(err: AppError): StoredResponse {
  return { status: err.status, location: null, body: JSON.stringify(errorDocument(err.toErrorObjects())) };
}

export interface IdempotencyDeps {
  pool: pg.Pool;
  leaseSeconds: number;
  log: Logger;
}

export interface IdempotentRequest extends KeyScope {
  fingerprint: string;
}

/**
 * Claims the key in the database: a new key becomes this request's (with a lease), a known key is
 * replayed (done), refused with 409 (in flight) or 422 (another request). A claim whose lease
 * expired — its owner crashed — is taken over.
 */
async function claim(
  deps: IdempotencyDeps,
  request: IdempotentRequest,
): Promise<{ token: string } | { response: StoredResponse }> {
  const token = randomUUID();
  const lease = { token, leaseSeconds: deps.leaseSeconds };
  // A key released or purged between our two statements sends us round again (rare: three rounds suffice).
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await insertClaim(deps.pool, request, { ...lease, fingerprint: request.fingerprint }))
      return { token };
    const row = await findKey(deps.pool, request);
    if (!row) continue;
    if (row.fingerprint !== request.fingerprint) throw keyReused();
    if (row.state === 'done') return { response: row.response };
    if (!row.expired) throw inFlight();
    if (await takeOverClaim(deps.pool, request, { ...lease, staleToken: row.token })) {
      deps.log.warn('took over an idempotency key whose previous attempt did not finish');
      return { token };
    }
  }
  throw inFlight();
}

/** Stores a response under the caller's claim, on `db`: the transaction of the change it describes. */
export type StoreResponse = (db: Queryable, response: StoredResponse) => Promise<StoredResponse>;

/**
 * Runs `work` at most once per key (draft "The Idempotency-Key HTTP Header Field"). `work` must
 * call `store` in the transaction that makes its change, so the change and its stored response
 * commit together or not at all. A refusal (4xx) that `work` throws is stored too and replayed the
 * same way; any other failure releases the key so that a retry starts afresh.
 */
export async function idempotent(
  deps: IdempotencyDeps,
  request: IdempotentRequest,
  work: (store: StoreResponse) => Promise<StoredResponse>,
): Promise<{ response: StoredResponse; replayed: boolean }> {
  const claimed = await claim(deps, request);
  if ('response' in claimed) return { response: claimed.response, replayed: true };
  const { token } = claimed;
  const store: StoreResponse = async (db, response) => {
    // Our lease ran out and another attempt owns the key now: throwing rolls our change back.
    if (!(await completeClaim(db, request, token, response))) throw inFlight();
    return response;
  };
  try {
    return { response: await work(store), replayed: false };
  } catch (err) {
    if (err instanceof AppError && err.status < 500) {
      return { response: await store(deps.pool, errorResponse(err)), replayed: false };
    }
    // Only an in-flight claim is deleted: if a commit succeeded but its answer was lost, the stored
    // response stays.
    await releaseClaim(deps.pool, request, token).catch((releaseErr: unknown) =>
      deps.log.warn({ err: releaseErr }, 'could not release an idempotency key; its lease will expire'),
    );
    throw err;
  }
}

/**
 * A creation (POST) under an idempotency key, counted in `outcomes`: claimed, run and stored once,
 * replayed afterwards. `work` counts its own outcome; a refusal at the claim (409 in flight, 422 for
 * another request) happens before it and is counted here.
 */
export async function keyedCreate(
  deps: { idempotency: IdempotencyDeps; outcomes: Counter<'outcome'> },
  request: FastifyRequest,
  key: string,
  endpoint: string,
  work: (store: StoreResponse) => Promise<StoredResponse>,
): Promise<{ response: StoredResponse; replayed: boolean }> {
  let processed = false;
  const result = await idempotent(
    deps.idempotency,
    { clientId: request.clientId, key, fingerprint: fingerprintOf(endpoint, request.body) },
    (store) => {
      processed = true;
      return work(store);
    },
  ).catch((err: unknown) => {
    if (!processed)
      deps.outcomes.inc({ outcome: err instanceof AppError ? 'idempotency_conflict' : 'error' });
    throw err;
  });
  if (result.replayed) deps.outcomes.inc({ outcome: 'replayed' });
  return result;
}
