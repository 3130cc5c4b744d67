import { useCallback, useRef } from 'react';
import { ApiError } from '../api/api.client';
import { newIdempotencyKey } from '../api/api.format';

/**
 * One Idempotency-Key per intent to sell: the same key for every send of the same form (a double
 * click, a retry after a lost answer), so the service sells once and replays its answer; a new key
 * once the intent changes (the form was edited) or was answered. A refusal (409 short stock…) is
 * stored under its key and would be replayed: trying again after it is a new intent, so a new key.
 * Only a lost answer, a 5xx (which frees the key) or a "still in flight" keeps it.
 */
export function useIdempotencyKey() {
  const key = useRef(newIdempotencyKey());
  const current = useCallback(() => key.current, []);
  const renew = useCallback(() => {
    key.current = newIdempotencyKey();
  }, []);
  const settled = useCallback(
    (error: unknown) => {
      const answered =
        error instanceof ApiError &&
        error.status >= 400 &&
        error.status < 500 &&
        !error.errors.some((e) => e.code === 'idempotency_key_in_flight');
      if (answered) renew();
    },
    [renew],
  );
  return { current, renew, settled };
}
