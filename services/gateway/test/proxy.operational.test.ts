/**
 * The services' /health and /metrics through the gateway (`/services/{name}/…`): passed on as the
 * service answered them, status and content type included, and a 503 in bounded time when the
 * service is not there.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

let upstream: Server;
let gateway: FastifyInstance;

beforeAll(async () => {
  upstream = createServer((request, response) => {
    if (request.url === '/health') {
      response.writeHead(503, { 'content-type': 'application/json' });
      response.end('{"status":"error","checks":{"database":"error"}}');
    } else if (request.url === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      response.end('outbox_pending 7\n');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  // Products points at a port nothing listens on: the upstream that is down.
  const closed = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const free = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(free));
    });
  });
  const config = loadConfig({
    INVENTORY_URL: `http://127.0.0.1:${port}`,
    PRODUCTS_URL: `http://127.0.0.1:${closed}`,
    CONSOLE_DIR: '/nonexistent',
  });
  gateway = await buildApp(config, pino({ level: 'silent' }));
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

it("passes on a service's /health as it answered, a 503 with its checks included", async () => {
  const response = await gateway.inject({ method: 'GET', url: '/services/inventory/health' });
  expect(response.statusCode).toBe(503);
  expect(response.headers['content-type']).toBe('application/json');
  expect(response.json()).toEqual({ status: 'error', checks: { database: 'error' } });
});

it("passes on a service's /metrics as Prometheus text", async () => {
  const response = await gateway.inject({ method: 'GET', url: '/services/inventory/metrics' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain/);
  expect(response.body).toBe('outbox_pending 7\n');
});

it('answers 503 in JSON:API words when the service cannot be reached', async () => {
  const response = await gateway.inject({ method: 'GET', url: '/services/products/health' });
  expect(response.statusCode).toBe(503);
  expect(response.json().errors[0]).toMatchObject({
    status: '503',
    code: 'upstream_unavailable',
    detail: 'El servicio de productos no está disponible; vuelva a intentarlo',
  });
});

it('only reads: a POST is no route', async () => {
  expect((await gateway.inject({ method: 'POST', url: '/services/inventory/health' })).statusCode).toBe(404);
});
