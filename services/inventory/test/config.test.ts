import { ConfigError } from '@catalogo/kit/config';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

const base = { DATABASE_URL: 'postgres://u@h/db' };

describe('loadConfig (docs/api.md §6)', () => {
  it('uses the documented defaults', () => {
    const config = loadConfig(base);
    expect(config.port).toBe(3002);
    expect(config.host).toBe('0.0.0.0');
    expect(config.apiKeys).toEqual(['dev-api-key']);
    expect(config.usingDevKey).toBe(true);
    expect(config.products).toMatchObject({
      url: 'http://localhost:3001',
      apiKey: 'dev-api-key',
      timeoutMs: 5_000,
      attempts: 3,
    });
    expect(config.productsHealthCacheMs).toBe(2_000);
    expect(loadConfig({ ...base, PRODUCTS_HEALTH_CACHE_MS: '0' }).productsHealthCacheMs).toBe(0);
  });

  it('reads the Products client settings', () => {
    const config = loadConfig({
      ...base,
      API_KEYS: 'a, b',
      PRODUCTS_URL: 'http://products:3001',
      PRODUCTS_API_KEY: 'secret',
      PRODUCTS_TIMEOUT_MS: '250',
      PRODUCTS_RETRIES: '5',
      PRODUCTS_BREAKER_THRESHOLD: '7',
      PRODUCTS_BREAKER_HALF_OPEN_MS: '900',
    });
    expect(config.apiKeys).toEqual(['a', 'b']);
    expect(config.products).toMatchObject({
      url: 'http://products:3001',
      apiKey: 'secret',
      timeoutMs: 250,
      attempts: 5,
      breakerThreshold: 7,
      breakerHalfOpenMs: 900,
    });
  });

  it('refuses invalid values, listing every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({ ...base, PRODUCTS_URL: 'not a url', PRODUCTS_TIMEOUT_MS: '0', PRODUCTS_RETRIES: 'x' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('PRODUCTS_URL');
    expect(problems).toContain('PRODUCTS_TIMEOUT_MS');
    expect(problems).toContain('PRODUCTS_RETRIES');
  });

  it('requires the keys in production', () => {
    expect(() => loadConfig({ ...base, NODE_ENV: 'production' })).toThrow(
      /API_KEYS[\s\S]*PRODUCTS_API_KEY|PRODUCTS_API_KEY[\s\S]*API_KEYS/,
    );
    expect(() =>
      loadConfig({
        ...base,
        NODE_ENV: 'production',
        API_KEYS: 'a-client-key-of-24-chars',
        PRODUCTS_API_KEY: 'the-key-for-products-xyz',
      }),
    ).not.toThrow();
  });

  it('refuses the development key and short keys in production, every one listed', () => {
    let error: unknown;
    try {
      loadConfig({ ...base, NODE_ENV: 'production', API_KEYS: 'dev-api-key', PRODUCTS_API_KEY: 'short' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^API_KEYS .*dev-api-key/),
      expect.stringMatching(/^PRODUCTS_API_KEY tiene 5 caracteres/),
    ]);
  });

  it('requires DATABASE_URL', () => {
    expect(() => loadConfig({})).toThrow(/DATABASE_URL/);
  });
});
