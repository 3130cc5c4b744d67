import type { Queryable } from '@catalogo/kit/db';

export interface KeyScope {
  clientId: string;
  key: string;
}

/** A response as first sent, kept to be replayed byte for byte. */
export interface StoredResponse {
  status: number;
  location: string | null;
  body: string;
}

export type KeyRow =
  | { state: 'in_flight'; fingerprint: string; token: string; expired: boolean }
  | { state: 'done'; fingerprint: string; response: StoredResponse };

/** Inserts an in-flight claim; false when the key already exists (the database decides, atomically). */
export async function insertClaim(
  db: Queryable,
  scope: KeyScope,
  claim: { fingerprint: string; token: string; leaseSeconds: number },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO idempotency_keys (client_id, key, fingerprint, token, lease_until)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
     ON CONFLICT DO NOTHING`,
    [scope.clientId, scope.key, claim.fingerprint, claim.token, claim.leaseSeconds],
  );
  return rowCount === 1;
}

export async function findKey(db: Queryable, scope: KeyScope): Promise<KeyRow | undefined> {
  const { rows } = await db.query<{
    state: 'in_flight' | 'done';
    fingerprint: string;
    token: string;
    expired: boolean;
    response_status: number | null;
    response_location: string | null;
    response_body: string | null;
  }>(
    `SELECT state, fingerprint, token, lease_until < now() AS expired,
            response_status, response_location, response_body
     FROM idempotency_keys WHERE client_id = $1 AND key = $2`,
    [scope.clientId, scope.key],
  );
  const row = rows[0];
  if (!row) return undefined;
  if (row.state === 'in_flight') {
    return { state: 'in_flight', fingerprint: row.fingerprint, token: row.token, expired: row.expired };
  }
  return {
    state: 'done',
    fingerprint: row.fingerprint,
    response: { status: row.response_status!, location: row.response_location, body: row.response_body! },
  };
}

/**
 * Takes over an in-flight claim whose lease expired (its owner crashed or hangs). Compare-and-set on
 * the old token: of several retries racing for the same stale claim, exactly one wins.
 */
export async function takeOverClaim(
  db: Queryable,
  scope: KeyScope,
  claim: { staleToken: string; token: string; leaseSeconds: number },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE idempotency_keys SET token = $4, lease_until = now() + make_interval(secs => $5)
     WHERE client_id = $1 AND key = $2 AND token = $3 AND state = 'in_flight' AND lease_until < now()`,
    [scope.clientId, scope.key, claim.staleToken, claim.token, claim.leaseSeconds],
  );
  return rowCount === 1;
}

/**
 * Stores the outcome of a claim. Run on the purchase's transaction, it commits or rolls back with
 * the purchase; false when the claim is no longer this request's (taken over after its lease ran
 * out), in which case the caller must roll back.
 */
export async function completeClaim(
  db: Queryable,
  scope: KeyScope,
  token: string,
  response: StoredResponse,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE idempotency_keys
     SET state = 'done', lease_until = NULL, completed_at = now(),
         response_status = $4, response_location = $5, response_body = $6
     WHERE client_id = $1 AND key = $2 AND token = $3 AND state = 'in_flight'`,
    [scope.clientId, scope.key, token, response.status, response.location, response.body],
  );
  return rowCount === 1;
}

/** Gives a claim up (a 5xx outcome), so that a retry processes the request afresh. */
export async function releaseClaim(db: Queryable, scope: KeyScope, token: string): Promise<void> {
  await db.query(
    `DELETE FROM idempotency_keys WHERE client_id = $1 AND key = $2 AND token = $3 AND state = 'in_flight'`,
    [scope.clientId, scope.key, token],
  );
}

/** Deletes keys older than the TTL, in bounded batches so no single statement runs long. */
export async function purgeKeys(db: Queryable, ttlHours: number, batch = 5_000): Promise<number> {
  let purged = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
         SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1) LIMIT $2))`,
      [ttlHours, batch],
    );
    purged += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) return purged;
  }
}
