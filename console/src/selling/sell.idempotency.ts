import { useCallback, useRef } from 'react';
import { ApiError } from '../api/api.client';
import { newIdempotencyKey } from '../api/api.format';

/**
 * A send whose key is still being processed by the service (a second click that got through, or
 * a retry after a lost answer) is answered 409 `idempotency_key_in_flight` with `Retry-After: 1`:
 * asked again with the same key a second later, the service replays the first answer.
 */
export const inFlight = (error: unknown) =>
  error instanceof ApiError && error.errors.some((e) => e.code === 'idempotency_key_in_flight');
export const IN_FLIGHT_RETRY = {
  retry: (count: number, error: unknown) => inFlight(error) && count < 10,
  retryDelay: 1_000,
};

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
        error instanceof ApiError && error.status >= 400 && error.status < 500 && !inFlight(error);
      if (answered) renew();
    },
    [renew],
  );
  // Set synchronously on the first click, before React renders the button busy: a double click's
  // second click finds it set and sends nothing.
  const sending = useRef(false);
  return { current, renew, settled, sending };
}
