import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { App } from '@catalogo/kit/app';
import pino from 'pino';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, expect } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { send, TEST_API_KEY } from '../../../test/support/inject.js';
import {
  type Answer,
  answerOf,
  type ErrorObject,
  expectErrorDocument,
  JSONAPI,
  type Source,
} from '../../../test/support/jsonapi.js';
import { buildApp as buildProducts } from '../../products/src/app.js';
import { loadConfig as loadProductsConfig } from '../../products/src/config.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { ledgerMismatches } from '../src/stock/stock.repository.js';

export { type Answer, answerOf, type ErrorObject, JSONAPI, type Source };

export const API_KEY = TEST_API_KEY;
export const SECOND_KEY = 'second-key';
export const headers = { 'x-api-key': API_KEY, 'content-type': JSONAPI };
export const MAX_INT = 2_147_483_647;
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const UNAVAILABLE = 'Servicio de productos no disponible';
const silent = pino({ level: 'silent' });
/** Every scrape renders afresh: tests read counters right after changing them. */
export const FRESH_METRICS = { METRICS_CACHE_MS: '0' };

export type Response = Awaited<ReturnType<App['inject']>>;

/** A real Products service over HTTP on an ephemeral port, with its own database. */
export async function startProducts(): Promise<{
  app: App;
  url: string;
  db: TestDatabase;
  close: () => Promise<void>;
}> {
  const db = await createTestDatabase('products');
  const app = await buildProducts(
    loadProductsConfig({ DATABASE_URL: db.url, API_KEYS: API_KEY, ...FRESH_METRICS }),
    silent,
  );
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    url: address,
    db,
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
}

export async function buildInventory(
  databaseUrl: string,
  productsUrl: string,
  env: Record<string, string> = {},
) {
  return buildApp(
    loadConfig({
      DATABASE_URL: databaseUrl,
      API_KEYS: `${API_KEY},${SECOND_KEY}`,
      PRODUCTS_URL: productsUrl,
      PRODUCTS_API_KEY: API_KEY,
      ...FRESH_METRICS,
      ...env,
    }),
    silent,
  );
}

export interface InventoryHarness {
  app: () => App;
  db: () => TestDatabase;
  products: () => Awaited<ReturnType<typeof startProducts>>;
  /** Creates a product through the real Products service and returns its id. */
  createProduct: (precio: number, nombre?: string) => Promise<number>;
  setStock: (id: number, cantidad: number) => Promise<void>;
}

/** Creates a product through a Products app and returns its id. */
export async function createProductIn(products: App, precio: number, nombre = 'Producto de prueba') {
  const response = await products.inject({
    method: 'POST',
    url: '/api/products',
    headers,
    payload: { data: { type: 'products', attributes: { nombre, precio } } },
  });
  if (response.statusCode !== 201) throw new Error(`product not created: ${response.body}`);
  return Number(response.json().data.id);
}

/** Sets a product's stock through an Inventory app. */
export async function setStockIn(app: App, id: number, cantidad: number): Promise<void> {
  const response = await app.inject({
    method: 'PATCH',
    url: `/api/inventory/${id}`,
    headers,
    payload: { data: { type: 'inventories', id: String(id), attributes: { cantidad } } },
  });
  if (response.statusCode !== 200) throw new Error(`stock not set: ${response.body}`);
}

/** A Products service over HTTP and an Inventory app on fresh databases, for one test file. */
export function useInventoryApp(env: Record<string, string> = {}): InventoryHarness {
  let app: App;
  let db: TestDatabase;
  let products: Awaited<ReturnType<typeof startProducts>>;
  beforeAll(async () => {
    products = await startProducts();
    db = await createTestDatabase('inventory');
    app = await buildInventory(db.url, products.url, env);
  });
  afterAll(async () => {
    await app?.close();
    await products?.close();
    await db?.drop();
  });
  return {
    app: () => app,
    db: () => db,
    products: () => products,
    createProduct: (precio, nombre) => createProductIn(products.app, precio, nombre),
    setStock: (id, cantidad) => setStockIn(app, id, cantidad),
  };
}

export interface Instances {
  db: () => TestDatabase;
  products: () => Awaited<ReturnType<typeof startProducts>>;
  /** Inventory app `i` (modulo the number of instances). */
  app: (i: number) => App;
  /** A request with the test key over real HTTP to instance `i` (modulo the number of instances). */
  call: (
    i: number,
    method: 'POST' | 'PATCH' | 'GET',
    path: string,
    body?: unknown,
  ) => Promise<{ status: number; body: { data: { id: string; attributes: Record<string, unknown> } } }>;
}

/**
 * `count` Inventory instances on ONE database, each listening on a real port, and a Products service,
 * for one test file: no in-process lock or cache may be what keeps the stock right.
 */
export function useInstances(count: number, env: Record<string, string> = {}): Instances {
  let products: Awaited<ReturnType<typeof startProducts>>;
  let db: TestDatabase;
  const instances: { app: App; url: string }[] = [];
  // Enough sockets that every request of a burst is in flight at once rather than queued client-side.
  const agent = new Agent({ connections: 128 });
  beforeAll(async () => {
    products = await startProducts();
    db = await createTestDatabase('inventory');
    for (let i = 0; i < count; i++) {
      const app = await buildInventory(db.url, products.url, { DATABASE_POOL_MAX: '8', ...env });
      instances.push({ app, url: await app.listen({ host: '127.0.0.1', port: 0 }) });
    }
  });
  afterAll(async () => {
    for (const { app } of instances) await app.close();
    await agent.close();
    await products?.close();
    await db?.drop();
  });
  return {
    db: () => db,
    products: () => products,
    app: (i) => instances[i % count]!.app,
    call: async (i, method, path, body) => {
      const res = await fetch(`${instances[i % count]!.url}${path}`, {
        method,
        headers: { 'x-api-key': API_KEY, 'content-type': JSONAPI },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        dispatcher: agent,
      });
      return {
        status: res.status,
        body: (await res.json()) as Awaited<ReturnType<Instances['call']>>['body'],
      };
    },
  };
}

export const purchaseBody = (producto_id: number, cantidad: number) => ({
  data: { type: 'purchases', attributes: { producto_id, cantidad } },
});

export const setBody = (id: number | string, attributes: Record<string, unknown>) => ({
  data: { type: 'inventories', id: String(id), attributes },
});

export const orderBody = (lineas: { producto_id: number; cantidad: number }[]) => ({
  data: { type: 'orders', attributes: { lineas } },
});

export const reservationBody = (lineas: { producto_id: number; cantidad: number }[], expira_en?: number) => ({
  data: { type: 'reservations', attributes: { lineas, ...(expira_en === undefined ? {} : { expira_en }) } },
});

export const reservationPatch = (id: string, estado: string) => ({
  data: { type: 'reservations', id, attributes: { estado } },
});

export const adjustmentBody = (attributes: Record<string, unknown>) => ({
  data: { type: 'inventory-adjustments', attributes },
});

export { send };

/** The answer to a request and how long it took, from the moment it was sent. */
export async function timed(request: Promise<Response>): Promise<{ res: Response; ms: number }> {
  const started = performance.now();
  const res = await request;
  return { res, ms: performance.now() - started };
}

/** Asserts a JSON:API error document with the given status (see test/support/jsonapi.ts). */
export const expectError = (
  res: Response | Answer,
  status: number,
  sources?: Source | Source[],
): ErrorObject[] => expectErrorDocument('statusCode' in res ? answerOf(res) : res, status, sources);

/**
 * Everything a request could have written to the Inventory database, as exact text: the stock
 * rows, the purchase history and the outbox (rows counted by type and product, so that a relay
 * marking events as published does not count as a change).
 */
export async function databaseState(db: TestDatabase) {
  const [inventario, historial, outbox, movimientos, pedidos, reservas] = await Promise.all([
    db.pool.query(
      `SELECT producto_id, cantidad, reservado, updated_at::text AS updated_at
         FROM inventario ORDER BY producto_id`,
    ),
    db.pool.query(
      `SELECT id, producto_id, cantidad, precio_unitario::text AS precio_unitario, total::text AS total,
              estado, cancelada_at::text AS cancelada_at, pedido_id
         FROM historial_compras ORDER BY id`,
    ),
    db.pool.query(
      'SELECT type, producto_id, count(*)::int AS n FROM outbox GROUP BY type, producto_id ORDER BY 1, 2',
    ),
    db.pool.query(
      'SELECT count(*)::int AS n, coalesce(max(id), 0)::text AS last FROM movimientos_inventario',
    ),
    db.pool.query('SELECT id, estado, cancelado_at::text AS cancelado_at FROM pedidos ORDER BY id'),
    db.pool.query('SELECT id, estado FROM reservas ORDER BY id'),
  ]);
  return {
    inventario: inventario.rows,
    historial: historial.rows,
    outbox: outbox.rows,
    movimientos: movimientos.rows,
    pedidos: pedidos.rows,
    reservas: reservas.rows,
  };
}

/** Runs `action` and asserts that it left the Inventory database exactly as it found it. */
export async function expectNoWrite<T>(db: TestDatabase, action: () => Promise<T>): Promise<T> {
  const before = await databaseState(db);
  const result = await action();
  expect(await databaseState(db)).toEqual(before);
  return result;
}

/**
 * Asserts the ledger invariant for every product of the database: Σ delta = cantidad and
 * Σ delta_reservado = reservado.
 */
export async function expectLedgerBalanced(db: TestDatabase): Promise<void> {
  expect(await ledgerMismatches(db.pool)).toEqual([]);
}

/**
 * Asserts the books of a product: cantidad + reservado + Σ sold − Σ cancelled = `expected` (its
 * initial stock plus the adjustments made since), with neither quantity below 0.
 */
export async function expectBooks(db: TestDatabase, productoId: number, expected: number): Promise<void> {
  const { rows } = await db.pool.query<{
    cantidad: number;
    reservado: number;
    sold: number;
    cancelled: number;
  }>(
    `SELECT coalesce((SELECT cantidad FROM inventario WHERE producto_id = $1), 0) AS cantidad,
            coalesce((SELECT reservado FROM inventario WHERE producto_id = $1), 0) AS reservado,
            (SELECT coalesce(sum(cantidad), 0)::int FROM historial_compras WHERE producto_id = $1) AS sold,
            (SELECT coalesce(sum(cantidad), 0)::int FROM historial_compras
              WHERE producto_id = $1 AND estado = 'cancelada') AS cancelled`,
    [productoId],
  );
  const { cantidad, reservado, sold, cancelled } = rows[0]!;
  expect(cantidad, `cantidad of ${productoId}`).toBeGreaterThanOrEqual(0);
  expect(reservado, `reservado of ${productoId}`).toBeGreaterThanOrEqual(0);
  expect(cantidad + reservado + sold - cancelled, `books of product ${productoId}`).toBe(expected);
}

/** Deadlocks PostgreSQL has detected in the database so far. */
export async function deadlocks(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return rows[0]!.n;
}

/** The stored quantity of a product, or undefined when it has no inventory row. */
export async function stockOf(db: TestDatabase, productoId: number): Promise<number | undefined> {
  const { rows } = await db.pool.query<{ cantidad: number }>(
    'SELECT cantidad FROM inventario WHERE producto_id = $1',
    [productoId],
  );
  return rows[0]?.cantidad;
}

/** How many history rows a product has and the units they add up to. */
export async function historyOf(
  db: TestDatabase,
  productoId: number,
): Promise<{ rows: number; units: number }> {
  const { rows } = await db.pool.query<{ rows: number; units: number }>(
    `SELECT count(*)::int AS rows, coalesce(sum(cantidad), 0)::int AS units
       FROM historial_compras WHERE producto_id = $1`,
    [productoId],
  );
  return rows[0]!;
}

export interface StockEvent {
  cantidad_anterior: number;
  cantidad: number;
  causa: 'set' | 'adjustment' | 'purchase';
}

/** The product's `inventory.updated` events in the order they were written. */
export async function stockEvents(db: TestDatabase, productoId: number): Promise<StockEvent[]> {
  const { rows } = await db.pool.query<{ data: StockEvent & { producto_id: number } }>(
    `SELECT data FROM outbox WHERE type = 'inventory.updated' AND producto_id = $1 ORDER BY seq`,
    [productoId],
  );
  return rows.map(({ data }) => {
    expect(data.producto_id).toBe(productoId);
    return { cantidad_anterior: data.cantidad_anterior, cantidad: data.cantidad, causa: data.causa };
  });
}

/**
 * Asserts that the events form one unbroken chain from `initial` to `final`: each change starts
 * from the quantity the previous one left. A lost update breaks the chain (two changes start
 * from the same quantity), so this holds for absolute sets too, where no sum can be predicted.
 */
export function expectUnbrokenChain(events: StockEvent[], initial: number, final: number): void {
  let current = initial;
  events.forEach((event, index) => {
    expect(event.cantidad_anterior, `event ${index} starts where the previous one ended`).toBe(current);
    current = event.cantidad;
  });
  expect(current).toBe(final);
}

/**
 * The value of the `/metrics` series `name` whose labels include `labels` (other labels, such as
 * the registry's default `service`, may be present), or undefined when there is none.
 */
export async function metric(app: App, name: string, labels: Record<string, string> = {}) {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  const wanted = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  for (const line of res.body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? '').split(',');
    if (wanted.every((pair) => present.includes(pair))) return Number(match[3]);
  }
  return undefined;
}

/** A port on 127.0.0.1 where nothing listens (it was free a moment ago and is closed again). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export type FakeBehaviour =
  | 'ok'
  | 'hang'
  | 'stall-body'
  | 'reset'
  | 'garbage'
  | 'huge'
  | 401
  | 404
  | 500
  | 502
  | 503
  | 504;

export interface FakeProducts {
  url: string;
  port: number;
  /** What the server does with the next requests; may be changed at any time. */
  behaviour: FakeBehaviour;
  /** Behaviours for the next requests, one each, before `behaviour` applies again. */
  script: FakeBehaviour[];
  /** Prices of the products the server knows (`ok`); unknown ids get 404. */
  prices: Map<number, number>;
  /** Documents served as they are (`ok`, 200) for these ids, before `prices` is looked at. */
  documents: Map<number, unknown>;
  /**
   * While set, product answers (`ok`) are made when a request arrives, as a database read would
   * be, and sent only once it settles: a request in flight that a test can hold open.
   */
  hold?: Promise<void>;
  requests: SeenRequest[];
  connections: () => number;
  close: () => Promise<void>;
}

/** The JSON:API document the fake serves for a product, shaped like the Products service's. */
export const fakeProduct = (id: number, precio: number) => ({
  type: 'products',
  id: String(id),
  attributes: {
    nombre: `Falso ${id}`,
    precio,
    descripcion: null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
  },
  links: { self: `/api/products/${id}` },
});

function answer(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': JSONAPI }).end(JSON.stringify(body));
}

const errorBody = (status: number) => ({ errors: [{ status: String(status), title: 'x', detail: 'x' }] });

/**
 * A stand-in for the Products service that counts the connections and requests it receives and
 * misbehaves on demand: hangs (accepts, never answers), stalls (sends the headers and part of the
 * body, never the rest), resets the connection, answers garbage, 50 MB or an error status. `GET /health`
 * follows the same behaviour.
 */
export async function startFakeProducts(initial: FakeBehaviour = 'ok'): Promise<FakeProducts> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const fake: FakeProducts = {
    url: '',
    port: 0,
    behaviour: initial,
    script: [],
    prices: new Map(),
    documents: new Map(),
    requests: [],
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((req, res) => {
    fake.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const behaviour = fake.script.shift() ?? fake.behaviour;
    if (behaviour === 'hang') return;
    if (behaviour === 'stall-body') {
      res.writeHead(200, { 'content-type': JSONAPI, 'content-length': '1000' }).write('{"data":');
      return;
    }
    if (behaviour === 'reset') {
      req.socket.destroy();
      return;
    }
    if (behaviour === 'huge') {
      // 50 MB announced and sent for as long as the client reads.
      res.writeHead(200, { 'content-type': JSONAPI, 'content-length': String(50 * 1024 * 1024) });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on('drain', pump);
      pump();
      return;
    }
    if (behaviour === 'garbage') {
      answer(res, 200, { data: { type: 'products', id: '1', attributes: { nombre: 'sin precio' } } });
      return;
    }
    if (typeof behaviour === 'number') {
      answer(res, behaviour, errorBody(behaviour));
      return;
    }
    if (req.url?.endsWith('/health')) {
      answer(res, 200, { status: 'ok' });
      return;
    }
    const held = fake.hold;
    const reply = (status: number, body: unknown) =>
      held ? void held.then(() => answer(res, status, body)) : answer(res, status, body);
    const list = /\/api\/products\?filter\[id\]=([\d,]+)/.exec(decodeURIComponent(req.url ?? ''))?.[1];
    if (list !== undefined) {
      const found = list.split(',').flatMap((raw) => {
        const document = fake.documents.get(Number(raw)) as { data?: unknown } | undefined;
        if (document !== undefined) return [document.data];
        const precio = fake.prices.get(Number(raw));
        return precio === undefined ? [] : [fakeProduct(Number(raw), precio)];
      });
      reply(200, { data: found, links: { self: req.url } });
      return;
    }
    const id = Number(/\/api\/products\/(\d+)$/.exec(req.url ?? '')?.[1]);
    const document = fake.documents.get(id);
    if (document !== undefined) {
      reply(200, document);
      return;
    }
    const precio = fake.prices.get(id);
    if (precio === undefined) reply(404, errorBody(404));
    else reply(200, { data: fakeProduct(id, precio), links: { self: `/api/products/${id}` } });
  });
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  return fake;
}

/** A deterministic pseudo-random sequence (mulberry32), so a failing run can be replayed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Shuffles a copy of `items` with the given random source. */
export function shuffled<T>(items: T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
