/**
 * What the kit's server does with clients that take too long or hold too much, over real sockets:
 * a body announced and never sent, headers that never end, a body that trickles in, more
 * connections than the cap, and a client that hangs up halfway through its body; and what a
 * flood of the unauthenticated /metrics and /health costs.
 */
import type { AddressInfo, Socket } from 'node:net';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type App, createKitApp } from '../src/app.js';
import type { HealthCheck } from '../src/health.js';
import { cachedMetricsText } from '../src/metrics.js';
import { capturingLogger, kitConfig, rawConnection, sleep, within } from './helpers.js';

const KEY = 'kit-limits-key';
const NEVER = -1;

async function startKit(env: Record<string, string>, health: Record<string, HealthCheck> = {}) {
  const { logger, lines } = capturingLogger();
  const { app, metrics } = await createKitApp({
    service: 'kit-limits',
    title: 'Kit limits',
    description: 'Límites',
    config: { ...kitConfig(env), apiKeys: [KEY] },
    logger,
    readOnlyAttributes: [],
    health,
  });
  app.post(
    '/api/things',
    { schema: { body: Type.Object({ data: Type.Object({ type: Type.Literal('things') }) }) } },
    async (_request, reply) => reply.code(201).send({ data: { type: 'things', id: '1' } }),
  );
  app.get('/open', async () => ({ ok: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, port, lines, metrics };
}

const post = (path: string, length: number, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\n` +
  `Content-Type: application/vnd.api+json\r\nContent-Length: ${length}\r\n\r\n${extra}`;

/** The value of `name` whose labels include `labels`, from the app's /metrics. */
async function metricValue(app: App, name: string, labels: Record<string, string> = {}) {
  const text = (await app.inject({ url: '/metrics' })).body;
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => wanted.every((pair) => line.includes(pair)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('timeouts', () => {
  let kit: Awaited<ReturnType<typeof startKit>>;
  beforeAll(async () => {
    kit = await startKit({
      HTTP_REQUEST_TIMEOUT_MS: '800',
      HTTP_HEADERS_TIMEOUT_MS: '500',
      METRICS_CACHE_MS: '0',
    });
  });
  afterAll(async () => {
    await kit?.app.close();
  });

  it.each(['/nope', '/api/things'])(
    'answers 408 and closes a request to %s whose announced body never arrives',
    async (path) => {
      const connection = await rawConnection(kit.port, post(path, 1_000_000));
      // Generous: the bound is 800 ms, swept every 500 ms; without it the connection stayed open for minutes.
      const ms = await within(connection.closed, 5_000, NEVER);
      expect(ms).not.toBe(NEVER);
      expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /);
      connection.socket.destroy();
    },
  );

  it('closes a connection whose headers never end', async () => {
    const connection = await rawConnection(kit.port, 'GET /open HTTP/1.1\r\nHost: x\r\n');
    expect(await within(connection.closed, 5_000, NEVER)).not.toBe(NEVER);
    connection.socket.destroy();
  });

  it('closes a body that trickles in, a byte at a time, past the request timeout', async () => {
    const connection = await rawConnection(kit.port, post('/api/things', 1_000));
    let open = true;
    void connection.closed.then(() => {
      open = false;
    });
    // Each byte resets an idle timer; only the deadline for the whole request ends this.
    for (let sent = 0; open && sent < 100; sent++) {
      connection.socket.write(' ');
      await sleep(100);
    }
    expect(open).toBe(false);
    connection.socket.destroy();
  });

  it('still answers a request that arrives in time', async () => {
    const body = '{"data":{"type":"things"}}';
    const connection = await rawConnection(kit.port, `${post('/api/things', body.length)}${body}`);
    for (let i = 0; i < 50 && !connection.received().includes('\r\n\r\n'); i++) await sleep(20);
    expect(connection.received()).toMatch(/^HTTP\/1\.1 201 /);
    connection.socket.destroy();
  });
});

const connectionsHeld = (app: App) =>
  new Promise<number>((resolve, reject) =>
    app.server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
  );

describe('connection cap', () => {
  let kit: Awaited<ReturnType<typeof startKit>>;
  beforeAll(async () => {
    kit = await startKit({ HTTP_MAX_CONNECTIONS: '3', METRICS_CACHE_MS: '0' });
  });
  afterAll(async () => {
    await kit?.app.close();
  });

  const get = 'GET /open HTTP/1.1\r\nHost: x\r\n\r\n';
  async function answered(connection: Awaited<ReturnType<typeof rawConnection>>) {
    for (let i = 0; i < 100 && !connection.received().includes('{"ok":true}'); i++) await sleep(20);
    return connection.received().includes('{"ok":true}');
  }

  it('closes connections beyond HTTP_MAX_CONNECTIONS on arrival and counts them', async () => {
    const held = await Promise.all([1, 2, 3].map(() => rawConnection(kit.port, get)));
    for (const connection of held) expect(await answered(connection)).toBe(true);

    const extra = await rawConnection(kit.port, get);
    expect(await within(extra.closed, 5_000, NEVER)).not.toBe(NEVER);
    expect(extra.received()).toBe('');
    expect(await metricValue(kit.app, 'http_connections_refused_total')).toBe(1);

    // One held connection goes: there is room again once the server has seen it close.
    held[0]!.socket.destroy();
    for (let i = 0; i < 250 && (await connectionsHeld(kit.app)) >= 3; i++) await sleep(20);
    const next = await rawConnection(kit.port, get);
    expect(await answered(next)).toBe(true);
    for (const connection of [...held, next]) connection.socket.destroy();
  });
});

describe('a client that hangs up halfway through its body', () => {
  let kit: Awaited<ReturnType<typeof startKit>>;
  beforeAll(async () => {
    kit = await startKit({ METRICS_CACHE_MS: '0' });
  });
  afterAll(async () => {
    await kit?.app.close();
  });

  it.each([
    ['resets the connection', (socket: Socket) => socket.resetAndDestroy()],
    ['closes its side of the connection', (socket: Socket) => socket.end()],
  ])(
    'that %s is logged as the client’s abort at info, never as an outage, nor counted as a 503',
    async (_how, hangUp) => {
      kit.lines.length = 0;
      const aborts = await metricValue(kit.app, 'http_client_aborts_total');
      const connection = await rawConnection(kit.port, post('/api/things', 100, '{"data":{"type":"th'));
      await sleep(100);
      hangUp(connection.socket);
      await connection.closed;
      const message = 'client closed the connection before its body arrived';
      for (let i = 0; i < 100 && !kit.lines.some((l) => l.msg === message); i++) await sleep(20);
      await sleep(50);

      expect(kit.lines.find((line) => line.msg === message)?.level).toBe(30);
      expect(kit.lines.filter((line) => Number(line.level) >= 40)).toEqual([]);
      expect(JSON.stringify(kit.lines)).not.toMatch(/dependency unavailable|Base de datos/);
      expect(await metricValue(kit.app, 'http_requests_total', { status: '503' })).toBe(0);
      expect(await metricValue(kit.app, 'http_client_aborts_total')).toBe(aborts + 1);
      connection.socket.destroy();
    },
  );
});

describe('floods of /metrics and /health', () => {
  let kit: Awaited<ReturnType<typeof startKit>>;
  const runs = { database: 0, upstream: 0 };
  beforeAll(async () => {
    kit = await startKit(
      { METRICS_CACHE_MS: '60000' },
      {
        // Each run lasts a second, so that hits sent together overlap it even on a busy machine.
        database: {
          critical: true,
          run: async () => {
            runs.database++;
            await sleep(1_000);
          },
        },
        upstream: { critical: false, maxAgeMs: 60_000, run: async () => void runs.upstream++ },
      },
    );
  });
  afterAll(async () => {
    await kit?.app.close();
  });

  it('renders /metrics at most once per METRICS_CACHE_MS, however many scrape at once', async () => {
    const render = vi.spyOn(kit.metrics.registry, 'metrics');
    const scrapes = await Promise.all(Array.from({ length: 50 }, () => kit.app.inject({ url: '/metrics' })));
    for (let i = 0; i < 10; i++) scrapes.push(await kit.app.inject({ url: '/metrics' }));
    expect(render).toHaveBeenCalledTimes(1);
    expect(new Set(scrapes.map((res) => res.statusCode))).toEqual(new Set([200]));
    expect(new Set(scrapes.map((res) => res.body)).size).toBe(1);
    expect(scrapes[0]!.body).toContain('http_requests_total');
  });

  it('shares one run of each check among concurrent hits, and reuses a result for its maxAgeMs', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, () => kit.app.inject({ url: '/health' })));
    expect(answers.map((res) => res.json())).toEqual(
      answers.map(() => ({ status: 'ok', checks: { database: 'ok', upstream: 'ok' } })),
    );
    expect(runs).toEqual({ database: 1, upstream: 1 });

    // A later hit runs the database check again (no maxAgeMs), the upstream check not before 60 s.
    expect((await kit.app.inject({ url: '/health' })).statusCode).toBe(200);
    expect(runs).toEqual({ database: 2, upstream: 1 });
  });
});

describe('cachedMetricsText', () => {
  it('with no maxAge, still lets concurrent scrapes share one rendering', async () => {
    const registry = { metrics: vi.fn(async () => `text ${registry.metrics.mock.calls.length}`) };
    const text = cachedMetricsText(registry as never, 0);
    expect(await Promise.all([text(), text(), text()])).toEqual(['text 1', 'text 1', 'text 1']);
    expect(await text()).toBe('text 2');
  });

  it('renders again once the text is older than maxAge, and after a failed rendering', async () => {
    let fail = true;
    const registry = {
      metrics: vi.fn(async () => {
        if (fail) throw new Error('collector failed');
        return `text ${registry.metrics.mock.calls.length}`;
      }),
    };
    const text = cachedMetricsText(registry as never, 40);
    await expect(text()).rejects.toThrow('collector failed');
    fail = false;
    expect(await text()).toBe('text 2');
    expect(await text()).toBe('text 2');
    await sleep(60);
    expect(await text()).toBe('text 3');
  });
});
