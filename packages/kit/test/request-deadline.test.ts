import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createKitApp } from '../src/app.js';
import { Deadline } from '../src/deadline.js';
import { kitConfig } from './helpers.js';

const KEY = 'kit-test-key';
const headers = { 'x-api-key': KEY };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let app: App;
beforeAll(async () => {
  ({ app } = await createKitApp({
    service: 'kit-test',
    title: 'Kit test',
    description: 'Plazos',
    config: { ...kitConfig({ REQUEST_TIMEOUT_MS: '100', METRICS_CACHE_MS: '0' }), apiKeys: [KEY] },
    logger: pino({ level: 'silent' }),
    readOnlyAttributes: [],
    health: {},
  }));
  // Work that checks the deadline before its second step, as the services' handlers do.
  app.get('/api/steps', async (request) => {
    const left = request.deadline.remaining();
    await sleep(Number((request.query as { ms: string }).ms));
    request.deadline.check();
    return { left };
  });
  app.get('/api/pool', async () => {
    throw new Error('timeout exceeded when trying to connect');
  });
  app.get('/api/locked', async () => {
    throw Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });
  });
  app.get('/api/slow-statement', async () => {
    throw Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
  });
});
afterAll(async () => {
  await app?.close();
});

const shed = async (reason: string) => {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  const line = res.body
    .split('\n')
    .find((l) => l.startsWith('requests_shed_total{') && l.includes(`reason="${reason}"`));
  return line ? Number(line.split(' ').pop()) : 0;
};

describe('the request deadline', () => {
  it('is set from the configuration when the request arrives', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/steps?ms=0', headers });
    expect(res.statusCode).toBe(200);
    const { left } = res.json() as { left: number };
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(100);
  });

  it('past it, the step that checks it answers 503 with Retry-After, counted as shed', async () => {
    const before = await shed('deadline_exceeded');
    const res = await app.inject({ method: 'GET', url: '/api/steps?ms=150', headers });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({
      errors: [
        {
          status: '503',
          title: 'Service Unavailable',
          code: 'deadline_exceeded',
          detail: 'La petición no pudo completarse a tiempo; reinténtela',
        },
      ],
    });
    expect(await shed('deadline_exceeded')).toBe(before + 1);
  });

  it.each([
    ['/api/pool', 'pool_timeout'],
    ['/api/locked', 'resource_locked'],
    ['/api/slow-statement', 'database_timeout'],
  ])('a database that cannot serve in time (%s) is a 503 %s with Retry-After', async (url, code) => {
    const res = await app.inject({ method: 'GET', url, headers });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json().errors[0].code).toBe(code);
    expect(await shed(code)).toBe(1);
  });
});

describe('Deadline', () => {
  it('counts down on the monotonic clock and throws only once past', async () => {
    const deadline = new Deadline(30);
    expect(() => deadline.check()).not.toThrow();
    await sleep(40);
    expect(deadline.remaining()).toBeLessThanOrEqual(0);
    expect(() => deadline.check()).toThrow(
      expect.objectContaining({ status: 503, code: 'deadline_exceeded' }),
    );
  });
});
