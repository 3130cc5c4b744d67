/**
 * docs/api.md is the contract clients are written from: it must name every route the two services
 * register and every status their OpenAPI documents declare.
 */
import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { App } from '../packages/kit/src/app.js';
import { buildApp as buildInventory } from '../services/inventory/src/app.js';
import { loadConfig as loadInventoryConfig } from '../services/inventory/src/config.js';
import { buildApp as buildProducts } from '../services/products/src/app.js';
import { loadConfig as loadProductsConfig } from '../services/products/src/config.js';

// Building an app opens no connection; the URL is only parsed.
const env = {
  DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
  LOG_LEVEL: 'silent',
  OUTBOX_RELAY: 'off',
};
const silent = pino({ level: 'silent' });
let apps: App[];
let doc: string;

beforeAll(async () => {
  apps = [
    await buildProducts(loadProductsConfig(env), silent),
    await buildInventory(loadInventoryConfig(env), silent),
  ];
  doc = await readFile(new URL('../docs/api.md', import.meta.url), 'utf8');
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
});

/**
 * Every method and full path of an app, read from Fastify's route tree (`printRoutes`), whose lines
 * look like `│   └── /:id (GET, HEAD, PATCH)`: four columns of indentation per level.
 */
function routesOf(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^(.*?)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const path = stack.join('').replace(/\/{2,}/g, '/');
    for (const method of match[3]?.split(', ') ?? []) {
      if (method !== 'HEAD') routes.push(`${method} ${path.replace(/:([A-Za-z_]+)/g, '{$1}')}`);
    }
  }
  return routes;
}

it('documents every route under /api, /health and /metrics', () => {
  const routes = apps
    .flatMap((app) => routesOf(app.printRoutes({ commonPrefix: false })))
    .filter((route) => /^[A-Z]+ \/(api|health|metrics)\b/.test(route));
  expect(routes).toContain('GET /api/products/{id}');
  expect(routes).toContain('POST /api/inventory/{id}/adjustments');
  expect(routes).toContain('GET /health');
  const missing = routes.filter((route) => !doc.includes(`\`${route}\``));
  expect(missing, 'routes that docs/api.md does not name as `METHOD /path`').toEqual([]);
});

it('lists every status the OpenAPI documents declare', () => {
  const statuses = new Set<string>();
  for (const app of apps) {
    const spec = app.swagger() as { paths: Record<string, Record<string, { responses?: object }>> };
    for (const operations of Object.values(spec.paths)) {
      for (const operation of Object.values(operations)) {
        for (const status of Object.keys(operation.responses ?? {})) statuses.add(status);
      }
    }
  }
  expect([...statuses]).toEqual(expect.arrayContaining(['200', '201', '204', '400', '503']));
  const table = doc.slice(doc.indexOf('### Statuses'), doc.indexOf('### Headers'));
  const missing = [...statuses].filter((status) => !new RegExp(`^\\| ${status} +\\|`, 'm').test(table));
  expect(missing, 'statuses missing from the table under "### Statuses" in docs/api.md').toEqual([]);
});
