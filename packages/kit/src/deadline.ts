import { serviceUnavailable } from './errors.js';

/**
 * `work`, or the error `expired()` makes if `work` has not settled within `ms`. `expired` runs at the
 * deadline, so it can also cancel the work; the timer goes as soon as `work` settles.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, expired: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(expired()), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The moment by which a request must be answered, on the monotonic clock. Work that writes or waits
 * asks it first: a step that starts past the deadline would only answer later than promised.
 */
export class Deadline {
  readonly at: number;

  constructor(ms: number) {
    this.at = performance.now() + ms;
  }

  /** Milliseconds left; zero or less once the deadline has passed. */
  remaining(): number {
    return this.at - performance.now();
  }

  /** Throws the 503 of a request out of time when the deadline has passed. */
  check(): void {
    if (this.remaining() <= 0) throw deadlineExceeded();
  }
}

/** A request that could not be answered in time: nothing was written for it. */
export const deadlineExceeded = () =>
  serviceUnavailable('La petición no pudo completarse a tiempo; reinténtela', undefined, 'deadline_exceeded');
