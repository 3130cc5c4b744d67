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
