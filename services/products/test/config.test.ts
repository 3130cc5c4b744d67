import { ConfigError } from '@catalogo/kit/config';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

const DATABASE_URL = 'postgres://postgres@127.0.0.1:1/products';

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('defaults to port 3001 and a pool of 10 connections', () => {
    expect(loadConfig({ DATABASE_URL })).toMatchObject({
      port: 3001,
      host: '0.0.0.0',
      databaseUrl: DATABASE_URL,
      databasePoolMax: 10,
      usingDevKey: true,
    });
  });

  it('reads DATABASE_POOL_MAX', () => {
    expect(loadConfig({ DATABASE_URL, DATABASE_POOL_MAX: '25' }).databasePoolMax).toBe(25);
  });

  it('keeps up to 10 000 products and 16 MiB of pages for at most 30 s in memory unless told otherwise', () => {
    expect(loadConfig({ DATABASE_URL })).toMatchObject({
      productCacheSize: 10_000,
      productCacheTtlMs: 30_000,
      productPageCacheBytes: 16 * 1024 * 1024,
    });
    expect(
      loadConfig({
        DATABASE_URL,
        PRODUCT_CACHE_SIZE: '0',
        PRODUCT_CACHE_TTL_MS: '500',
        PRODUCT_PAGE_CACHE_MB: '0',
      }),
    ).toMatchObject({ productCacheSize: 0, productCacheTtlMs: 500, productPageCacheBytes: 0 });
  });

  it.each([
    ['PRODUCT_CACHE_SIZE', '-1'],
    ['PRODUCT_CACHE_SIZE', 'lots'],
    ['PRODUCT_CACHE_TTL_MS', '0'],
    ['PRODUCT_CACHE_TTL_MS', '1.5'],
    ['PRODUCT_PAGE_CACHE_MB', '-1'],
    ['PRODUCT_PAGE_CACHE_MB', '65537'],
  ])('refuses %s=%j', (name, value) => {
    expect(problemsOf({ DATABASE_URL, [name]: value })).toEqual([expect.stringContaining(name)]);
  });

  it.each(['0', '1001', 'many'])('refuses DATABASE_POOL_MAX=%j', (DATABASE_POOL_MAX) => {
    expect(problemsOf({ DATABASE_URL, DATABASE_POOL_MAX })).toEqual([
      expect.stringContaining('DATABASE_POOL_MAX'),
    ]);
  });

  it('refuses to start in production without API_KEYS, listing every other problem too', () => {
    const problems = problemsOf({ NODE_ENV: 'production', DATABASE_POOL_MAX: '0' });
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/API_KEYS[\s\S]*DATABASE_URL[\s\S]*DATABASE_POOL_MAX/);
  });
});

describe('the development key', () => {
  it('outside production without API_KEYS, accepts only dev-api-key and warns once at start-up', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // Without a database to listen to, the product cache would add its own warning.
    const app = await buildApp(
      loadConfig({ DATABASE_URL, NODE_ENV: 'development', PRODUCT_CACHE_SIZE: '0' }),
      logger,
    );
    try {
      const warnings = lines.filter((l) => l.level === 40);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.msg).toContain('dev-api-key');
      // A path id that is not a number is refused after authentication and before the database.
      const accepted = await app.inject({
        url: '/api/products/abc',
        headers: { 'x-api-key': 'dev-api-key' },
      });
      expect(accepted.statusCode).toBe(400);
      const refused = await app.inject({ url: '/api/products/abc', headers: { 'x-api-key': 'test-key' } });
      expect(refused.statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('with API_KEYS set, the development key is refused and nothing is warned', async () => {
    const lines: { level: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const app = await buildApp(
      loadConfig({ DATABASE_URL, API_KEYS: 'real-key', PRODUCT_CACHE_SIZE: '0' }),
      logger,
    );
    try {
      expect(lines.filter((l) => l.level >= 40)).toEqual([]);
      const res = await app.inject({ url: '/api/products/abc', headers: { 'x-api-key': 'dev-api-key' } });
      expect(res.statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });
});
