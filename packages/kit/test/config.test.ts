import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEV_API_KEY,
  EnvReader,
  MIN_PRODUCTION_KEY_LENGTH,
  readBaseConfig,
} from '../src/config.js';

const DATABASE_URL = 'postgres://user@localhost:5432/db';
const LONG_KEY = 'a-production-key-of-33-characters';

/** Reads the base configuration and fails as a service would at start-up. */
function load(env: Record<string, string | undefined>, defaultPort = 3001) {
  const reader = new EnvReader(env);
  const config = readBaseConfig(reader, defaultPort);
  reader.done();
  return config;
}

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('readBaseConfig', () => {
  it('applies the defaults of docs/api.md §6', () => {
    expect(load({ DATABASE_URL }, 3002)).toEqual({
      nodeEnv: 'development',
      port: 3002,
      host: '0.0.0.0',
      databaseUrl: DATABASE_URL,
      apiKeys: [DEV_API_KEY],
      usingDevKey: true,
      logLevel: 'info',
      instances: 1,
      http: {
        requestTimeoutMs: 10_000,
        headersTimeoutMs: 5_000,
        idleTimeoutMs: 60_000,
        keepAliveTimeoutMs: 72_000,
        maxConnections: 1_000,
      },
      metricsCacheMs: 1_000,
      requestTimeoutMs: 10_000,
      database: { connectionTimeoutMs: 2_000, statementTimeoutMs: 5_000, lockTimeoutMs: 1_000 },
    });
    expect(DEV_API_KEY).toBe('dev-api-key');
  });

  it('reads every variable it is given', () => {
    expect(
      load({
        DATABASE_URL,
        NODE_ENV: 'production',
        PORT: '8080',
        HOST: '127.0.0.1',
        API_KEYS: LONG_KEY,
        LOG_LEVEL: 'debug',
        INSTANCES: '4',
        HTTP_REQUEST_TIMEOUT_MS: '3000',
        HTTP_HEADERS_TIMEOUT_MS: '2000',
        HTTP_IDLE_TIMEOUT_MS: '9000',
        HTTP_KEEP_ALIVE_TIMEOUT_MS: '4000',
        HTTP_MAX_CONNECTIONS: '50',
        METRICS_CACHE_MS: '0',
        REQUEST_TIMEOUT_MS: '4000',
        DATABASE_POOL_TIMEOUT_MS: '500',
        DATABASE_STATEMENT_TIMEOUT_MS: '3000',
        DATABASE_LOCK_TIMEOUT_MS: '250',
      }),
    ).toEqual({
      nodeEnv: 'production',
      port: 8080,
      host: '127.0.0.1',
      databaseUrl: DATABASE_URL,
      apiKeys: [LONG_KEY],
      usingDevKey: false,
      logLevel: 'debug',
      instances: 4,
      http: {
        requestTimeoutMs: 3_000,
        headersTimeoutMs: 2_000,
        idleTimeoutMs: 9_000,
        keepAliveTimeoutMs: 4_000,
        maxConnections: 50,
      },
      metricsCacheMs: 0,
      requestTimeoutMs: 4_000,
      database: { connectionTimeoutMs: 500, statementTimeoutMs: 3_000, lockTimeoutMs: 250 },
    });
  });

  it('splits API_KEYS on commas, trimming and dropping empty entries; no dev-key warning then', () => {
    const config = load({ DATABASE_URL, API_KEYS: ' one , two,,three , ' });
    expect(config.apiKeys).toEqual(['one', 'two', 'three']);
    expect(config.usingDevKey).toBe(false);
  });

  it.each([
    ['unset', undefined],
    ['empty', ''],
    ['only commas and spaces', ' , ,'],
  ])('outside production, API_KEYS %s means the dev key with the warning flag', (_label, API_KEYS) => {
    const config = load({ DATABASE_URL, API_KEYS, NODE_ENV: 'test' });
    expect(config.apiKeys).toEqual([DEV_API_KEY]);
    expect(config.usingDevKey).toBe(true);
  });

  it.each([undefined, '', ' , '])('in production, API_KEYS=%j refuses to start', (API_KEYS) => {
    const problems = problemsOf({ DATABASE_URL, NODE_ENV: 'production', API_KEYS });
    expect(problems).toEqual([expect.stringContaining('API_KEYS')]);
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    const problems = problemsOf({
      DATABASE_URL,
      HTTP_REQUEST_TIMEOUT_MS: '1000',
      HTTP_HEADERS_TIMEOUT_MS: '2000',
    });
    expect(problems).toEqual([expect.stringContaining('HTTP_HEADERS_TIMEOUT_MS')]);
  });

  it.each([
    'HTTP_REQUEST_TIMEOUT_MS',
    'HTTP_HEADERS_TIMEOUT_MS',
    'HTTP_IDLE_TIMEOUT_MS',
    'HTTP_KEEP_ALIVE_TIMEOUT_MS',
    'HTTP_MAX_CONNECTIONS',
  ])('%s=0 is refused: no limit is not an option', (name) => {
    expect(problemsOf({ DATABASE_URL, [name]: '0' })).toEqual([expect.stringContaining(name)]);
  });

  describe('API keys in production', () => {
    const production = { DATABASE_URL, NODE_ENV: 'production' };

    it('refuses the published development key, alone or among others', () => {
      expect(problemsOf({ ...production, API_KEYS: DEV_API_KEY })).toEqual([
        expect.stringMatching(/API_KEYS.*dev-api-key/),
      ]);
      expect(problemsOf({ ...production, API_KEYS: `${LONG_KEY},dev-api-key` })).toEqual([
        expect.stringMatching(/API_KEYS \(clave nº 2\).*dev-api-key/),
      ]);
    });

    it(`refuses keys shorter than ${MIN_PRODUCTION_KEY_LENGTH} characters, naming them by place, never by text`, () => {
      const short = 'x'.repeat(MIN_PRODUCTION_KEY_LENGTH - 1);
      const problems = problemsOf({ ...production, API_KEYS: `a,${LONG_KEY},${short}` });
      expect(problems).toEqual([
        expect.stringMatching(/API_KEYS \(clave nº 1\) tiene 1 caracteres/),
        expect.stringMatching(new RegExp(`API_KEYS \\(clave nº 3\\) tiene ${short.length} caracteres`)),
      ]);
      expect(problems.join('\n')).not.toContain(short);
      expect(load({ ...production, API_KEYS: 'y'.repeat(MIN_PRODUCTION_KEY_LENGTH) }).apiKeys).toHaveLength(
        1,
      );
    });

    it('applies the same rules to a secret such as PRODUCTS_API_KEY', () => {
      for (const [value, problem] of [
        [DEV_API_KEY, /PRODUCTS_API_KEY.*dev-api-key/],
        ['corta', /PRODUCTS_API_KEY tiene 5 caracteres/],
      ] as const) {
        const reader = new EnvReader({ NODE_ENV: 'production', PRODUCTS_API_KEY: value });
        reader.secret('PRODUCTS_API_KEY', DEV_API_KEY);
        expect(reader.problems).toEqual([expect.stringMatching(problem)]);
      }
    });

    it('keeps accepting any key outside production', () => {
      expect(load({ DATABASE_URL, API_KEYS: 'a,dev-api-key' }).apiKeys).toEqual(['a', DEV_API_KEY]);
    });
  });

  it.each(['abc', '70000', '65536', '-1', '3.5', '80abc'])('PORT=%j is refused', (PORT) => {
    const problems = problemsOf({ DATABASE_URL, PORT });
    expect(problems).toEqual([expect.stringContaining('PORT')]);
    expect(problems[0]).toContain(`'${PORT}'`);
  });

  it.each(['0', '65535', ' 3005 '])('PORT=%j is accepted', (PORT) => {
    expect(load({ DATABASE_URL, PORT }).port).toBe(Number(PORT));
  });

  it.each(['verbose', 'INFO', 'warning'])('LOG_LEVEL=%j is refused', (LOG_LEVEL) => {
    expect(problemsOf({ DATABASE_URL, LOG_LEVEL })).toEqual([expect.stringContaining('LOG_LEVEL')]);
  });

  it.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])(
    'LOG_LEVEL=%j is accepted',
    (LOG_LEVEL) => {
      expect(load({ DATABASE_URL, LOG_LEVEL }).logLevel).toBe(LOG_LEVEL);
    },
  );

  it('DATABASE_URL is required and must be a URL', () => {
    expect(problemsOf({})).toEqual([expect.stringContaining('DATABASE_URL')]);
    expect(problemsOf({ DATABASE_URL: '   ' })).toEqual([expect.stringContaining('DATABASE_URL')]);
    expect(problemsOf({ DATABASE_URL: 'not a url' })).toEqual([expect.stringContaining('DATABASE_URL')]);
  });

  it('lists every problem at once, in one ConfigError whose message names them all', () => {
    let error: ConfigError | undefined;
    try {
      load({ NODE_ENV: 'production', PORT: 'x', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.name).toBe('ConfigError');
    expect(error?.problems).toHaveLength(4);
    for (const variable of ['API_KEYS', 'PORT', 'LOG_LEVEL', 'DATABASE_URL']) {
      expect(error?.problems.some((p) => p.includes(variable))).toBe(true);
      expect(error?.message).toContain(variable);
    }
  });
});

describe('EnvReader', () => {
  it('string: trims, falls back, and records a missing required value', () => {
    const reader = new EnvReader({ A: '  x  ', B: '   ' });
    expect(reader.string('A')).toBe('x');
    expect(reader.string('B', 'fallback')).toBe('fallback');
    expect(reader.string('C', 'c')).toBe('c');
    expect(reader.problems).toEqual([]);
    expect(reader.string('D')).toBe('');
    expect(reader.problems).toEqual([expect.stringContaining('D')]);
    expect(() => reader.done()).toThrow(ConfigError);
  });

  it('optional: undefined when unset or blank', () => {
    const reader = new EnvReader({ A: ' v ', B: ' ' });
    expect(reader.optional('A')).toBe('v');
    expect(reader.optional('B')).toBeUndefined();
    expect(reader.optional('C')).toBeUndefined();
    expect(() => reader.done()).not.toThrow();
  });

  it('int: within bounds, fallback when unset, a problem otherwise', () => {
    const reader = new EnvReader({ OK: '5', LOW: '0', HIGH: '11', BAD: 'five', BLANK: '' });
    expect(reader.int('OK', 1, 1, 10)).toBe(5);
    expect(reader.int('UNSET', 3, 1, 10)).toBe(3);
    expect(reader.int('BLANK', 3, 1, 10)).toBe(3);
    expect(reader.problems).toEqual([]);
    reader.int('LOW', 3, 1, 10);
    reader.int('HIGH', 3, 1, 10);
    reader.int('BAD', 3, 1, 10);
    expect(reader.problems).toHaveLength(3);
    expect(reader.problems.join('\n')).toMatch(/LOW[\s\S]*HIGH[\s\S]*BAD/);
  });

  it('url: a parsable URL or a problem', () => {
    const reader = new EnvReader({ GOOD: 'http://localhost:3001', BAD: 'localhost 3001' });
    expect(reader.url('GOOD')).toBe('http://localhost:3001');
    expect(reader.url('MISSING', 'http://x')).toBe('http://x');
    expect(reader.problems).toEqual([]);
    reader.url('BAD');
    expect(reader.problems).toEqual([expect.stringContaining('BAD')]);
  });

  it('secret: the dev default outside production, a problem in production', () => {
    const dev = new EnvReader({});
    expect(dev.production).toBe(false);
    expect(dev.secret('PRODUCTS_API_KEY', 'dev-api-key')).toBe('dev-api-key');
    expect(dev.problems).toEqual([]);

    const prod = new EnvReader({ NODE_ENV: 'production' });
    expect(prod.production).toBe(true);
    prod.secret('PRODUCTS_API_KEY', 'dev-api-key');
    expect(prod.problems).toEqual([expect.stringContaining('PRODUCTS_API_KEY')]);

    const given = new EnvReader({ NODE_ENV: 'production', PRODUCTS_API_KEY: LONG_KEY });
    expect(given.secret('PRODUCTS_API_KEY', 'dev-api-key')).toBe(LONG_KEY);
    expect(given.problems).toEqual([]);
  });
});
