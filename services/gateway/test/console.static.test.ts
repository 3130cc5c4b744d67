/**
 * The console at `/`: the built files from CONSOLE_DIR, hashed assets cached for a year and
 * index.html revalidated, any other page of the single-page app answered with index.html, while
 * unknown /api paths stay JSON:API 404s. Without a build, a short page says how to make one.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Gateway, type Stub, startGateway, startStub } from './helpers.js';

const INDEX = '<!doctype html><title>Consola</title><script src="/assets/index-3f9a1c.js"></script>';
const SCRIPT = 'console.log("consola");';

let dir: string;
let upstream: Stub;
let built: Gateway;
let unbuilt: Gateway;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gateway-console-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), INDEX);
  await writeFile(join(dir, 'assets/index-3f9a1c.js'), SCRIPT);
  await writeFile(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  upstream = await startStub();
  const upstreams = { products: upstream.url, inventory: upstream.url };
  built = await startGateway(upstreams, { CONSOLE_DIR: dir });
  unbuilt = await startGateway(upstreams, { CONSOLE_DIR: join(dir, 'missing') });
});

afterAll(async () => {
  await Promise.all([built?.close(), unbuilt?.close()]);
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

it('serves index.html at /, revalidated on every visit', async () => {
  const res = await fetch(`${built.url}/`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(res.headers.get('cache-control')).toBe('no-cache');
  expect(res.headers.get('etag')).toBeTruthy();
  expect(await res.text()).toBe(INDEX);
});

it('serves hashed assets with a year-long, immutable cache', async () => {
  const res = await fetch(`${built.url}/assets/index-3f9a1c.js`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/javascript/);
  expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  expect(await res.text()).toBe(SCRIPT);
  const icon = await fetch(`${built.url}/favicon.svg`);
  expect(icon.status).toBe(200);
  expect(icon.headers.get('cache-control')).toBe('no-cache');
});

it.each(['/productos', '/productos/7/movimientos', '/pedidos?estado=confirmado'])(
  'GET %s, a page of the console, is index.html',
  async (path) => {
    const res = await fetch(`${built.url}${path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toBe(INDEX);
  },
);

it('a missing asset or an unknown /api path is no page of the console', async () => {
  const asset = await fetch(`${built.url}/assets/index-000000.js`);
  expect(asset.status).toBe(404);
  expect(asset.headers.get('content-type')).toBe('application/vnd.api+json');
  const api = await fetch(`${built.url}/api/nothing/here`);
  expect(api.status).toBe(404);
  expect(api.headers.get('content-type')).toBe('application/vnd.api+json');
  const post = await fetch(`${built.url}/productos`, { method: 'POST', body: '{}' });
  expect(post.status).toBe(404);
  expect(post.headers.get('content-type')).toBe('application/vnd.api+json');
});

it('the API is forwarded as usual beside the console', async () => {
  const res = await fetch(`${built.url}/api/products/1`);
  expect(res.status).toBe(200);
  expect(((await res.json()) as { url: string }).url).toBe('/api/products/1');
});

it('without a built console, / says how to build it, and the API still works', async () => {
  for (const path of ['/', '/productos']) {
    const res = await fetch(`${unbuilt.url}${path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toContain('npm run build -w @catalogo/console');
  }
  expect((await fetch(`${unbuilt.url}/api/products/1`)).status).toBe(200);
});
