import pino from 'pino';
import { Type } from 'typebox';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type App, BODY_LIMIT, createKitApp } from '../src/app.js';
import { AppError } from '../src/errors.js';
import type { HealthCheck } from '../src/health.js';
import { MEDIA_TYPE } from '../src/jsonapi.js';
import { MAX_BODY_VALUES, MAX_ERRORS } from '../src/validation.js';
import { kitConfig } from './helpers.js';

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
    // Every scrape renders afresh here: these tests read counters right after changing them.
    config: { ...kitConfig({ METRICS_CACHE_MS: '0' }), apiKeys: [KEY] },
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

describe('methods a known path does not support', () => {
  it('answer 405 with an Allow header and a JSON:API error', async () => {
    const res = await app.inject({ method: 'PUT', url: '/api/things/1', headers: withKey });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('DELETE, GET, HEAD');
    expect(res.headers['content-type']).toBe(MEDIA_TYPE);
    expect(res.json()).toEqual({
      errors: [
        {
          status: '405',
          title: 'Method Not Allowed',
          code: 'method_not_allowed',
          detail: 'El método PUT no está permitido en esta ruta; se admite: DELETE, GET, HEAD',
        },
      ],
    });
    const collection = await app.inject({ method: 'PATCH', url: '/api/things?x=1', headers: withKey });
    expect(collection.statusCode).toBe(405);
    expect(collection.headers.allow).toBe('POST');
  });

  it('still asks for the key first, and a path that does not exist stays a 404', async () => {
    expect((await app.inject({ method: 'PUT', url: '/api/things/1' })).statusCode).toBe(401);
    const missing = await app.inject({ method: 'PUT', url: '/api/nothing/1', headers: withKey });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers.allow).toBeUndefined();
  });

  it('holds outside /api and for a percent-encoded path too', async () => {
    const open = await app.inject({ method: 'DELETE', url: '/open' });
    expect(open.statusCode).toBe(405);
    expect(open.headers.allow).toBe('GET, HEAD');
    const encoded = await app.inject({ method: 'PUT', url: '/%61pi/things/1', headers: withKey });
    expect(encoded.statusCode).toBe(405);
  });
});

describe('error amplification', () => {
  /** A body of about 0.9 MiB: `count` unknown attributes, or one attribute as long as they all are. */
  function floodBody(count: number): string {
    const members = Array.from({ length: count }, (_, i) => `"a${i}":0`).join(',');
    return `{"data":{"type":"things","attributes":{"n":1,${members}}}}`;
  }
  const sameSizeOneProblem = (size: number) =>
    `{"data":{"type":"things","attributes":{"n":1,"pad":"${'x'.repeat(size - 60)}"}}}`;

  async function timedPost(payload: string) {
    const started = performance.now();
    const res = await app.inject({
      method: 'POST',
      url: '/api/things',
      headers: { ...withKey, 'content-type': MEDIA_TYPE },
      payload,
    });
    return { res, ms: performance.now() - started };
  }

  it(`answers ${MAX_BODY_VALUES} unknown attributes with ${MAX_ERRORS} errors, the last saying more were left out`, async () => {
    // With `data`, `type`, `attributes` and `n`, the body holds exactly MAX_BODY_VALUES values.
    const { res } = await timedPost(floodBody(MAX_BODY_VALUES - 4));
    expect(res.statusCode).toBe(400);
    const errors = res.json().errors as { code: string; detail: string; source?: { pointer: string } }[];
    expect(errors).toHaveLength(MAX_ERRORS);
    expect(errors[0]!.source).toEqual({ pointer: '/data/attributes/a0' });
    expect(errors.at(-1)).toEqual({
      status: '400',
      title: 'Bad Request',
      code: 'validation_failed',
      detail: `La petición tiene más problemas: se muestran los ${MAX_ERRORS - 1} primeros`,
    });
  });

  it('refuses a body of 90 000 unknown attributes before validating it, with one error', async () => {
    const flood = floodBody(90_000);
    expect(flood.length).toBeLessThan(BODY_LIMIT);
    const { res } = await timedPost(flood);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      errors: [
        {
          status: '400',
          title: 'Bad Request',
          code: 'too_many_values',
          detail: `El cuerpo de la petición contiene más de ${MAX_BODY_VALUES} valores`,
          source: { pointer: '' },
        },
      ],
    });
    // Arrays count too: an array of many items would cost the same.
    const items = `{"data":{"type":"things","attributes":{"n":[${'0,'.repeat(MAX_BODY_VALUES)}0]}}}`;
    expect((await timedPost(items)).res.json().errors[0].code).toBe('too_many_values');
  });

  it('costs about what a body of the same size with one problem costs', async () => {
    const flood = floodBody(90_000);
    const floor = sameSizeOneProblem(flood.length);
    // Medians of a few runs each, interleaved, so one pause of a busy machine does not decide.
    const floods: number[] = [];
    const floors: number[] = [];
    for (let i = 0; i < 5; i++) {
      floors.push((await timedPost(floor)).ms);
      floods.push((await timedPost(flood)).ms);
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[2]!;
    console.log(
      `[error amplification] 90 000 unknown attributes: median ${median(floods).toFixed(1)} ms; ` +
        `same size, one problem: ${median(floors).toFixed(1)} ms`,
    );
    // Generous: parsing 0.9 MiB of JSON is the floor; before the cap this took 50-100× as long.
    expect(median(floods)).toBeLessThan(10 * median(floors) + 50);
  });
});

describe('keys in the query string', () => {
  it.each([
    'api_key=secret-in-query',
    'X-API-Key=secret-in-query',
    'apikey=secret-in-query&page%5Bsize%5D=2',
    'access_token=secret-in-query',
    'api%5Fkey=secret-in-query',
  ])('are refused as before, and the logged URL redacts them (?%s)', async (query) => {
    logLines.length = 0;
    const res = await app.inject({ url: `/api/things/1?${query}` });
    expect(res.statusCode).toBe(401);
    const completed = logLines.find((line) => line.msg === 'request completed');
    expect(completed?.url).toMatch(/^\/api\/things\/1\?[^=]+=\[redacted\]/);
    expect(JSON.stringify(logLines)).not.toContain('secret-in-query');
  });

  it('keeps the other parameters as they were sent', async () => {
    logLines.length = 0;
    await app.inject({ url: '/api/things/1?page%5Bsize%5D=2&token=t0k3n-value&sort=-id', headers: withKey });
    expect(logLines.find((line) => line.msg === 'request completed')?.url).toBe(
      '/api/things/1?page%5Bsize%5D=2&token=[redacted]&sort=-id',
    );
  });

  it('redacts them from the detail of a 404 too', async () => {
    logLines.length = 0;
    const res = await app.inject({ url: '/api/nothing?api_key=secret-in-query', headers: withKey });
    expect(res.statusCode).toBe(404);
    expect(res.body).not.toContain('secret-in-query');
    expect(JSON.stringify(logLines)).not.toContain('secret-in-query');
  });
});
