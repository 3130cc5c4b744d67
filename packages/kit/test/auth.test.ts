import { describe, expect, it } from 'vitest';
import { apiKeyVerifier } from '../src/auth.js';
import { AppError } from '../src/errors.js';

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected the key to be refused');
}

describe('apiKeyVerifier', () => {
  const verify = apiKeyVerifier(['alpha-key', 'beta-key', 'gamma-key']);

  it('accepts every configured key, whichever position it has', () => {
    for (const key of ['alpha-key', 'beta-key', 'gamma-key']) {
      expect(() => verify(key)).not.toThrow();
    }
  });

  it('identifies each key by a stable id that is not the key itself', () => {
    const ids = ['alpha-key', 'beta-key', 'gamma-key'].map((key) => verify(key));
    expect(new Set(ids).size).toBe(3);
    expect(verify('beta-key')).toBe(ids[1]);
    for (const [index, key] of ['alpha-key', 'beta-key', 'gamma-key'].entries()) {
      expect(ids[index]).toMatch(/^[0-9a-f]{64}$/);
      expect(ids[index]).not.toContain(key);
    }
  });

  it.each([
    ['a wrong key', 'delta-key'],
    ['a prefix of a key', 'alpha'],
    ['a key with a suffix', 'alpha-key2'],
    ['a key with surrounding spaces', ' alpha-key '],
    ['a key in another case', 'ALPHA-KEY'],
    ['two keys joined', 'alpha-key, beta-key'],
    ['an empty header', ''],
    ['no header', undefined],
    ['a repeated header (array)', ['alpha-key', 'alpha-key']],
    ['an array of one key', ['alpha-key']],
  ])('refuses %s with 401', (_label, presented) => {
    const error = refusal(() => verify(presented));
    expect(error.status).toBe(401);
    expect(error.toErrorObjects()).toEqual([
      expect.objectContaining({
        status: '401',
        title: 'Unauthorized',
        detail: 'API Key inválida o ausente',
        source: { header: 'X-API-Key' },
      }),
    ]);
  });

  it('with no keys configured refuses everything', () => {
    const none = apiKeyVerifier([]);
    expect(refusal(() => none('')).status).toBe(401);
    expect(refusal(() => none('anything')).status).toBe(401);
  });

  it('never puts the presented key into the error', () => {
    const error = refusal(() => verify('secret-attempt'));
    expect(JSON.stringify(error.toErrorObjects())).not.toContain('secret-attempt');
    expect(error.message).not.toContain('secret-attempt');
  });
});
