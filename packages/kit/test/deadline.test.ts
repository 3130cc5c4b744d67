import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { withDeadline } from '../src/deadline.js';

// Fake timers: the deadline is judged against the clock the test moves, not the machine's speed.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('withDeadline', () => {
  it('settles as the work does when it is in time, and never calls expired', async () => {
    const expired = vi.fn(() => new Error('late'));
    const inTime = withDeadline(after(5, 'done'), 200, expired);
    await vi.advanceTimersByTimeAsync(5);
    await expect(inTime).resolves.toBe('done');
    await expect(withDeadline(Promise.reject(new Error('broken')), 200, expired)).rejects.toThrow('broken');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(expired).not.toHaveBeenCalled();
  });

  it('rejects with the error expired makes, once, at the deadline', async () => {
    const expired = vi.fn(() => new Error('late'));
    const late = withDeadline(after(500, 'done'), 50, expired);
    const outcome = late.then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    await vi.advanceTimersByTimeAsync(49);
    expect(expired).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toBe('late');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(expired).toHaveBeenCalledOnce();
  });
});
