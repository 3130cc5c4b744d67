/**
 * One purchase, one trace: the Inventory request, the span of its product request and the call to
 * Products in it (W3C `traceparent` over real HTTP), the Products request, the group-commit
 * statement's span and the SQL of both services all carry one trace id, and every log line either service wrote for it carries that trace_id.
 * The services run in a child process (trace.child.ts) that starts tracing before loading them,
 * as `node --import @catalogo/kit/tracing` does for a real service.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

interface SpanRecord {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  parentIsRemote: boolean;
  links: string[];
  attributes: Record<string, unknown>;
}
const SERVER = 1;
const CLIENT = 2;

let productsDb: TestDatabase;
let inventoryDb: TestDatabase;
let spans: SpanRecord[];
let logs: Record<string, unknown>[];

/** Runs a TypeScript file of this folder in a Node process of its own, as a service runs. */
async function runChild(file: string, env: Record<string, string>, preloads: string[] = []) {
  const child = spawn(
    process.execPath,
    [
      ...preloads.flatMap((url) => ['--import', url]),
      '--import',
      'tsx',
      '--conditions=source',
      join(import.meta.dirname, file),
    ],
    { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${file} exited with ${code}:\n${stderr}\n${stdout}`);
  return { stdout, stderr };
}

beforeAll(async () => {
  [productsDb, inventoryDb] = await Promise.all([
    createTestDatabase('products'),
    createTestDatabase('inventory'),
  ]);
  const { stdout } = await runChild('trace.child.ts', {
    PRODUCTS_DATABASE_URL: productsDb.url,
    INVENTORY_DATABASE_URL: inventoryDb.url,
  });
  const lines = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  spans = (lines.find((line) => 'spans' in line) as { spans: SpanRecord[] }).spans;
  logs = lines.filter((line) => !('spans' in line));
}, 120_000);

/**
 * Every module a child process resolves under the name `@opentelemetry`, seen by a resolve hook
 * registered before anything else loads.
 */
async function openTelemetryModulesLoaded(endpoint: string | undefined): Promise<string[]> {
  const hook = `export async function resolve(specifier, context, next) {
    const resolved = await next(specifier, context);
    if (resolved.url.includes('@opentelemetry')) process.stderr.write('RESOLVED ' + resolved.url + '\\n');
    return resolved;
  }`;
  const register = `import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
  const { stdout, stderr } = await runChild(
    'tracing-off.child.ts',
    endpoint ? { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } : {},
    [`data:text/javascript,${encodeURIComponent(register)}`],
  );
  expect(stdout).toContain('"msg":"loaded"');
  return [...stderr.matchAll(/^RESOLVED (.+)$/gm)].map((m) => m[1]!);
}

it('loads no module of OpenTelemetry without OTEL_EXPORTER_OTLP_ENDPOINT (and the SDK with it)', async () => {
  expect(await openTelemetryModulesLoaded(undefined)).toEqual([]);
  // The check sees them when they load: with an endpoint (nothing answers there), the SDK is loaded.
  const loaded = await openTelemetryModulesLoaded('http://127.0.0.1:9');
  expect(loaded.some((url) => url.includes('sdk-trace-node'))).toBe(true);
}, 60_000);

afterAll(async () => {
  await Promise.all([productsDb?.drop(), inventoryDb?.drop()]);
});

const purchaseTrace = () => {
  const request = spans.find((s) => s.kind === SERVER && s.name === 'POST /api/purchases');
  expect(request, JSON.stringify(spans.map((s) => s.name))).toBeDefined();
  return { request: request!, trace: spans.filter((s) => s.traceId === request!.traceId) };
};

it('holds the Inventory request, its call to Products, the Products request and the SQL of both, under one trace id', () => {
  const { request, trace } = purchaseTrace();
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  const childrenOf = (parent: SpanRecord) => trace.filter((s) => s.parentSpanId === parent.spanId);

  // The product request may serve several purchases: a span of its own, like the group commit's.
  const fetch = childrenOf(request).find((s) => s.name === 'products.fetch');
  expect(fetch, 'the product request is a span of the request').toBeDefined();
  expect(fetch!.links).toEqual([request.spanId]);
  const call = childrenOf(fetch!).find((s) => s.kind === CLIENT && s.name === 'GET');
  expect(call, 'the call to Products is a child of it').toBeDefined();
  const productsRequest = trace.find((s) => s.kind === SERVER && s.name === 'GET /api/products/:id');
  expect(productsRequest, 'the Products request is in the same trace').toBeDefined();
  // Parented across the wire: the traceparent header the call sent, not the process's memory.
  expect(productsRequest!.parentSpanId).toBe(call!.spanId);
  expect(productsRequest!.parentIsRemote).toBe(true);
  const productsSql = childrenOf(productsRequest!).filter((s) => s.name.startsWith('pg.query'));
  expect(productsSql.map((s) => s.attributes['db.namespace'])).toEqual([productsDb.url.split('/').pop()]);

  const batch = childrenOf(request).find((s) => s.name === 'purchases.batch');
  expect(batch, 'the group-commit statement is a span of the request').toBeDefined();
  expect(batch!.links).toEqual([request.spanId]);
  const write = childrenOf(batch!).filter((s) => s.name.startsWith('pg.query'));
  expect(write.length).toBe(1);
  expect(write[0]!.attributes['db.namespace']).toBe(inventoryDb.url.split('/').pop());

  for (const span of trace) {
    if (span.parentSpanId)
      expect(byId.has(span.parentSpanId), `${span.name} has its parent in the trace`).toBe(true);
  }
});

it('writes the trace id on every log line of the traced request, in both services', () => {
  const { request } = purchaseTrace();
  const traced = logs.filter((line) => line.trace_id === request.traceId);
  expect(traced.map((line) => [line.service, line.msg])).toEqual(
    expect.arrayContaining([
      ['products', 'request completed'],
      ['inventory', 'request completed'],
    ]),
  );
  const inventoryPurchaseLines = logs.filter(
    (line) =>
      line.service === 'inventory' && (line.url === '/api/purchases' || line.msg === 'purchase recorded'),
  );
  expect(inventoryPurchaseLines.length).toBeGreaterThan(0);
  for (const line of inventoryPurchaseLines) expect(line.trace_id).toBe(request.traceId);
});
