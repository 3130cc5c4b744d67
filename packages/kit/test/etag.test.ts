import { describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.js';
import { checkIfMatch, notModified, STALE, strongEtag } from '../src/etag.js';

describe('entity tags', () => {
  it('are strong, quoted, equal for equal versions and different for different ones', () => {
    const tag = strongEtag({ cantidad: 3 });
    expect(tag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(strongEtag({ cantidad: 3 })).toBe(tag);
    expect(strongEtag({ cantidad: 4 })).not.toBe(tag);
  });

  it('If-None-Match: 304 for the current tag (weakly compared), a list holding it, or *', () => {
    const tag = strongEtag('v1');
    expect(notModified(undefined, tag)).toBe(false);
    expect(notModified(tag, tag)).toBe(true);
    expect(notModified(`W/${tag}`, tag)).toBe(true);
    expect(notModified(`"x", ${tag}`, tag)).toBe(true);
    expect(notModified('*', tag)).toBe(true);
    expect(notModified(strongEtag('v0'), tag)).toBe(false);
  });

  it('If-Match: 412 unless it names the current tag (strongly compared) or is *', () => {
    const tag = strongEtag('v1');
    expect(() => checkIfMatch(undefined, tag)).not.toThrow();
    expect(() => checkIfMatch(tag, tag)).not.toThrow();
    expect(() => checkIfMatch(`"x", ${tag}`, tag)).not.toThrow();
    expect(() => checkIfMatch('*', tag)).not.toThrow();
    for (const stale of [strongEtag('v0'), `W/${tag}`, '']) {
      let error: unknown;
      try {
        checkIfMatch(stale, tag);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).toErrorObjects()[0]).toMatchObject({
        status: '412',
        title: 'Precondition Failed',
        detail: STALE,
        source: { header: 'If-Match' },
      });
    }
  });
});
