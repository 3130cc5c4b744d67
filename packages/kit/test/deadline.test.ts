import { describe, expect, it, vi } from 'vitest';
import { withDeadline } from '../src/deadline.js';

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('withDeadline', () => {
  it('settles as the work does when it is in time, and never calls expired', async () => {
    const expired = vi.fn(() => new Error('late'));
    await expect(withDeadline(after(5, 'done'), 200, expired)).resolves.toBe('done');
    await expect(withDeadline(Promise.reject(new Error('broken')), 200, expired)).rejects.toThrow('broken');
    await after(250, null);
    expect(expired).not.toHaveBeenCalled();
  });

  it('rejects with the error expired makes, once, at the deadline', async () => {
    const expired = vi.fn(() => new Error('late'));
    const started = performance.now();
    await expect(withDeadline(after(500, 'done'), 50, expired)).rejects.toThrow('late');
    expect(performance.now() - started).toBeLessThan(400);
    expect(expired).toHaveBeenCalledOnce();
  });
});
