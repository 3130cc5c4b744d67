import pino from 'pino';
import { Type } from 'typebox';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type App, createKitApp } from '../src/app.js';
import { AppError } from '../src/errors.js';
import type { HealthCheck } from '../src/health.js';
import { MEDIA_TYPE } from '../src/jsonapi.js';

const KEY = 'kit-test-key';

/** Everything the app logs, as parsed JSON lines. */
const logLines: Record<string, unknown>[] = [];
const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });

const checks: Record<string, HealthCheck> = {
  database: { critical: true, run: async () => {} },
  upstream: { critical: false, run: async () => {} },
};

let app: App;

beforeAll(async () => {
  ({ app } = await createKitApp({
    service: 'kit-test',
    title: 'Kit test',
    description: 'Rutas de prueba',
    config: { apiKeys: [KEY] },
    logger,
    readOnlyAttributes: ['created_at'],
    health: checks,
  }));
  app.get('/api/things/:id', async (request) => ({
    data: { type: 'things', id: (request.params as { id: string }).id },
  }));
  app.post(
    '/api/things',
    {
      schema: {
        body: Type.Object(
          {
            data: Type.Object(
              {
                type: Type.Literal('things'),
                attributes: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
              },
              { additionalProperties: false },
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (_request, reply) => reply.code(201).send({ data: { type: 'things', id: '1' } }),
  );
  app.get('/api/bug', async () => {
    throw new Error('relation "secret_table" does not exist: SELECT password FROM users');
  });
  app.get('/api/db-down', async () => {
    throw Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' });
  });
  app.get('/api/limited', async () => {
    throw new AppError(
      429,
      'rate_limited',
      { detail: 'Demasiadas peticiones' },
      { headers: { 'retry-after': '7' } },
    );
  });
  app.delete('/api/things/:id', async (_request, reply) => reply.code(204).send());
  app.get('/open', async () => ({ ok: true }));
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

afterEach(() => {
  checks.database!.run = async () => {};
  checks.upstream!.run = async () => {};
  vi.useRealTimers();
});

const withKey = { 'x-api-key': KEY };

describe('the /api boundary', () => {
  it('requires the key on /api routes and not elsewhere', async () => {
    expect((await app.inject({ url: '/api/things/1' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/things/1', headers: withKey })).statusCode).toBe(200);
    const open = await app.inject({ url: '/open' });
    expect(open.statusCode).toBe(200);
    expect(open.headers['content-type']).toMatch(/^application\/json/);
  });

  it.each(['/%61pi/things/1', '/a%70i/things/1', '/ap%69/things/1'])(
    'requires the key when the /api prefix is percent-encoded (%s)',
    async (url) => {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toBe(MEDIA_TYPE);
      const post = await app.inject({
        method: 'POST',
        url: '/%61pi/things',
        headers: { 'content-type': 'application/json' },
        payload: '{"data":{"type":"things","attributes":{"n":1}}}',
      });
      expect(post.statusCode).toBe(401);
    },
  );

  it('requires the key before telling whether an /api route exists', async () => {
    expect((await app.inject({ url: '/api/nothing-here' })).statusCode).toBe(401);
    const res = await app.inject({ url: '/api/nothing-here', headers: withKey });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toBe(MEDIA_TYPE);
  });

  it('answers an undecodable URL with a JSON:API 400 and the request id', async () => {
    const res = await app.inject({ url: '/api/things/%E0%A4%A', headers: { 'x-request-id': 'bad-url-1' } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe(MEDIA_TYPE);
    expect(res.headers['x-request-id']).toBe('bad-url-1');
    expect(res.json()).toEqual({
      errors: [{ status: '400', title: 'Bad Request', code: 'invalid_url', detail: expect.any(String) }],
    });
  });

  it('sets no Content-Type on a 204', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/api/things/1', headers: withKey });
    expect(res.statusCode).toBe(204);
    expect(res.headers['content-type']).toBeUndefined();
    expect(res.body).toBe('');
  });
});

describe('the error handler', () => {
  it('answers a bug with a bare 500 and logs it with its cause', async () => {
    logLines.length = 0;
    const res = await app.inject({ url: '/api/bug', headers: withKey });
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toBe(MEDIA_TYPE);
    expect(res.json()).toEqual({
      errors: [
        {
          status: '500',
          title: 'Internal Server Error',
          code: 'internal_error',
          detail: 'Error interno del servidor',
        },
      ],
    });
    expect(res.body).not.toMatch(/secret_table|SELECT|password|at .*\.ts/);
    const logged = logLines.find((line) => line.msg === 'unexpected error');
    expect(logged?.level).toBe(50);
    expect(JSON.stringify(logged)).toContain('secret_table');
  });

  it('answers an unreachable database with 503', async () => {
    const res = await app.inject({ url: '/api/db-down', headers: withKey });
    expect(res.statusCode).toBe(503);
    expect(res.json().errors[0]).toMatchObject({ status: '503', detail: 'Base de datos no disponible' });
    expect(res.body).not.toContain('10.0.0.5');
  });

  it('sends the headers an AppError carries', async () => {
    const res = await app.inject({ url: '/api/limited', headers: withKey });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.json().errors[0]).toMatchObject({ status: '429', title: 'Too Many Requests' });
  });

  it('maps schema errors to 400 with pointers and names read-only attributes', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/things',
      headers: { ...withKey, 'content-type': MEDIA_TYPE },
      payload: JSON.stringify({ data: { type: 'things', attributes: { n: 1.5, created_at: 'x' } } }),
    });
    expect(res.statusCode).toBe(400);
    const errors = res.json().errors as { source: unknown; detail: string }[];
    expect(errors.map((e) => e.source)).toEqual(
      expect.arrayContaining([{ pointer: '/data/attributes/n' }, { pointer: '/data/attributes/created_at' }]),
    );
    expect(errors.find((e) => JSON.stringify(e.source).includes('created_at'))?.detail).toMatch(
      /solo lectura/,
    );
  });
});

describe('secrets in logs', () => {
  it('never logs an API key, accepted or refused', async () => {
    logLines.length = 0;
    await app.inject({ url: '/api/things/1', headers: withKey });
    await app.inject({ url: '/api/things/1', headers: { 'x-api-key': 'wrong-secret-key' } });
    await app.inject({ url: '/api/bug', headers: withKey });
    expect(logLines.length).toBeGreaterThan(0);
    const all = JSON.stringify(logLines);
    expect(all).not.toContain(KEY);
    expect(all).not.toContain('wrong-secret-key');
  });
});

describe('request ids', () => {
  it('echoes a well-formed x-request-id and replaces a malformed one', async () => {
    const echoed = await app.inject({ url: '/open', headers: { 'x-request-id': 'abc.DEF_123-x' } });
    expect(echoed.headers['x-request-id']).toBe('abc.DEF_123-x');
    for (const bad of ['with space', 'x'.repeat(129), 'semi;colon', '']) {
      const res = await app.inject({ url: '/open', headers: { 'x-request-id': bad } });
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('generates a different id for every request', async () => {
    const a = await app.inject({ url: '/open' });
    const b = await app.inject({ url: '/open' });
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});

describe('/health', () => {
  it('is 200 when every check passes', async () => {
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json()).toEqual({ status: 'ok', checks: { database: 'ok', upstream: 'ok' } });
  });

  it('is 503 naming the failing critical check', async () => {
    checks.database!.run = async () => {
      throw new Error('down');
    };
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'error', checks: { database: 'error', upstream: 'ok' } });
  });

  it('stays 200 when only a non-critical check fails, and reports it', async () => {
    checks.upstream!.run = async () => {
      throw new Error('products down');
    };
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', checks: { database: 'ok', upstream: 'error' } });
  });

  it('gives up on a check that hangs, after 2 seconds', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    checks.database!.run = () => new Promise(() => {});
    const pending = app.inject({ url: '/health' });
    await vi.advanceTimersByTimeAsync(1_999);
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const res = await pending;
    expect(res.statusCode).toBe(503);
    expect(res.json().checks.database).toBe('error');
  });
});

/** The samples of one metric in Prometheus text, with their labels parsed. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`))
    .map((line) => {
      const [, labelText = '', value = ''] = /^[^{]+\{(.*)\} (\S+)$/.exec(line) ?? [];
      const labels = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      return { labels, value: Number(value) };
    });
}

describe('/metrics', () => {
  it('counts requests by method, route template and status, with latency histograms', async () => {
    const before = await app.inject({ url: '/metrics' });
    const count = (text: string, status: string) =>
      samples(text, 'http_requests_total').find(
        (s) =>
          s.labels.route === '/api/things/:id' && s.labels.status === status && s.labels.method === 'GET',
      )?.value ?? 0;
    await app.inject({ url: '/api/things/42', headers: withKey });
    await app.inject({ url: '/api/things/43', headers: withKey });
    await app.inject({ url: '/api/things/44' });
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(count(res.body, '200') - count(before.body, '200')).toBe(2);
    expect(count(res.body, '401') - count(before.body, '401')).toBe(1);
    const buckets = samples(res.body, 'http_request_duration_seconds_bucket').filter(
      (s) => s.labels.route === '/api/things/:id' && s.labels.status === '200',
    );
    expect(buckets.find((b) => b.labels.le === '+Inf')?.value).toBeGreaterThanOrEqual(2);
    expect(buckets.every((b) => b.labels.service === 'kit-test' && b.labels.method === 'GET')).toBe(true);
    expect(res.body).not.toContain('/api/things/42');
  });

  it('labels requests that match no route as unmatched, so ids never become labels', async () => {
    await app.inject({ url: '/nowhere/12345' });
    const res = await app.inject({ url: '/metrics' });
    expect(
      samples(res.body, 'http_requests_total').some(
        (s) => s.labels.route === 'unmatched' && s.labels.status === '404',
      ),
    ).toBe(true);
    expect(res.body).not.toContain('12345');
  });
});
