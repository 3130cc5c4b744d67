import { hash, timingSafeEqual } from 'node:crypto';
import { AppError } from './errors.js';

// The one-shot hash: this runs on every request, and it costs half of createHash().update().digest().
const digest = (value: string) => hash('sha256', value, 'buffer');

/**
 * Builds the API-key check. Keys are compared as SHA-256 digests with timingSafeEqual, so neither
 * the content nor the length of a configured key leaks through response timing; every configured
 * key is compared, whichever matches.
 */
export function apiKeyVerifier(keys: string[]): (presented: string | string[] | undefined) => string {
  const digests = keys.map(digest);
  // The key's digest identifies the client (idempotency scopes) without exposing the key.
  const clientIds = digests.map((known) => known.toString('hex'));
  return (presented) => {
    if (typeof presented === 'string' && presented.length > 0) {
      const candidate = digest(presented);
      let matched = -1;
      digests.forEach((known, index) => {
        if (timingSafeEqual(known, candidate) && matched < 0) matched = index;
      });
      if (matched >= 0) return clientIds[matched]!;
    }
    throw new AppError(401, 'unauthorized', {
      detail: 'API Key inválida o ausente',
      source: { header: 'X-API-Key' },
    });
  };
}
