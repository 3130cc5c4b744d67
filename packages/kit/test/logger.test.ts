import { describe, expect, it } from 'vitest';
import { redactUrl } from '../src/logger.js';

describe('redactUrl', () => {
  it.each([
    ['/api/products', '/api/products'],
    ['/api/products?page%5Bsize%5D=2&sort=-id', '/api/products?page%5Bsize%5D=2&sort=-id'],
    ['/api/x?api_key=s&b=1', '/api/x?api_key=[redacted]&b=1'],
    ['/api/x?API-KEY=s', '/api/x?API-KEY=[redacted]'],
    ['/api/x?a=1&X-Api-Key=s&X-Api-Key=t', '/api/x?a=1&X-Api-Key=[redacted]&X-Api-Key=[redacted]'],
    ['/api/x?api%5Fkey=s', '/api/x?api%5Fkey=[redacted]'],
    ['/api/x?api+key=s', '/api/x?api+key=[redacted]'],
    ['/api/x?token', '/api/x?token=[redacted]'],
    [
      '/api/x?password=s&authorization=t&client_secret=u',
      '/api/x?password=[redacted]&authorization=[redacted]&client_secret=[redacted]',
    ],
    ['/api/x?%E0key=s', '/api/x?%E0key=[redacted]'],
    ['/api/x?filter%5Bnombre%5D=caf', '/api/x?filter%5Bnombre%5D=caf'],
  ])('%s → %s', (url, logged) => {
    expect(redactUrl(url)).toBe(logged);
  });
});
