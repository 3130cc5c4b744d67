import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/**
 * A stand-in for a service on an ephemeral port: `handle` answers every request once its body has
 * arrived (whole), and can be swapped by a test. `requests` records what reached it.
 */
export interface Stub {
  url: string;
  server: Server;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }>;
  handle: Handler;
  close: () => Promise<void>;
}

/** Echoes what it received, as JSON: a 200 unless the test swaps the handler. */
export const echo: Handler = (req, res, body) => {
  const text = JSON.stringify({
    method: req.method,
    url: req.url,
    headers: req.headers,
    body: body.toString(),
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

export async function startStub(handle: Handler = echo): Promise<Stub> {
  const stub: Stub = {
    url: '',
    requests: [],
    handle,
    server: createServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        stub.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        stub.handle(req, res, body);
      });
    }),
    close: async () => {
      stub.server.closeAllConnections();
      stub.server.close();
      await once(stub.server, 'close');
    },
  };
  stub.server.listen(0, '127.0.0.1');
  await once(stub.server, 'listening');
  stub.url = `http://127.0.0.1:${(stub.server.address() as AddressInfo).port}`;
  return stub;
}

/** The gateway's log lines, as written: every level, nothing redacted. */
export function captureLog() {
  const lines: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  return { logger, text: () => lines.join('') };
}

export interface Gateway {
  app: FastifyInstance;
  url: string;
  log: () => string;
  close: () => Promise<void>;
}

/** The gateway listening on an ephemeral port in front of the given services. */
export async function startGateway(
  upstreams: { products: string; inventory: string },
  env: Record<string, string> = {},
): Promise<Gateway> {
  const log = captureLog();
  const app = await buildApp(
    loadConfig({
      PRODUCTS_URL: upstreams.products,
      INVENTORY_URL: upstreams.inventory,
      CONSOLE_DIR: '/nonexistent/console',
      METRICS_CACHE_MS: '0',
      ...env,
    }),
    log.logger,
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const close = async () => {
    const closing = app.close();
    // A client may hold a connection on which it never sent a request (fetch opens a spare one
    // after an aborted stream); the server would wait for its idle timeout before closing.
    app.server.closeAllConnections();
    await closing;
  };
  return { app, url, log: log.text, close };
}

/** A port nothing listens on (it was free a moment ago): connections to it are refused. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return `http://127.0.0.1:${port}`;
}

/**
 * One request through node:http, the path sent exactly as given and any header allowed (fetch
 * normalises `..` away and refuses hop-by-hop headers).
 */
export async function rawRequest(
  base: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  const { hostname, port } = new URL(base);
  const req = request({
    host: hostname,
    port,
    method: options.method ?? 'GET',
    path: options.path,
    headers: options.headers,
    agent: false,
  });
  req.end(options.body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) };
}
