/**
 * `npm start`: the whole system on one machine. An embedded PostgreSQL holding `products_db` and
 * `inventory_db` (none when PRODUCTS_DATABASE_URL and INVENTORY_DATABASE_URL are both given), then
 * the Products and Inventory services as child processes, then the gateway in front of them. Ctrl-C or SIGTERM stops the services,
 * then PostgreSQL, and leaves no process behind; a service that dies on its own stops everything.
 *
 * The services listen on 127.0.0.1 unless asked otherwise (`--host 0.0.0.0` or HOST): the system
 * runs with a published development key. Logs are JSON lines, readable lines in a terminal (`--json`
 * keeps JSON there too). `--instances N` runs N instances of each service on its port (a node:cluster
 * primary per service, see packages/kit/src/cluster.ts). The gateway on GATEWAY_PORT (3000) is the
 * one entry point: the console at `/`, `/api` forwarded to the services. `--help` lists the options
 * and variables.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { isIPv6 } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { DEV_API_KEY, MAX_INSTANCES } from '../packages/kit/src/config.js';
import { SHUTDOWN_DELAY_MS } from '../packages/kit/src/server.js';
import { ensureConsoleBuilt } from './console-build.js';
import {
  type EmbeddedCluster,
  freePort,
  PostgresStartError,
  startEmbeddedPostgres,
} from './embedded-postgres.js';
import { chooseLogFormat, lineFormatter } from './runner-logs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The services' own grace period for in-flight requests, and a margin for a cluster primary to
// collect its workers.
const STOP_GRACE_MS = SHUTDOWN_DELAY_MS + 5_000;
const PORT_WAIT_MS = 10_000;
const HEALTH_TIMEOUT_MS = 60_000;
// Each instance loads and builds the whole service at once with the others: on a busy machine
// three instances of two services took 35 s to listen where one took 10 s.
const HEALTH_TIMEOUT_PER_EXTRA_INSTANCE_MS = 30_000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A start-up problem the user can fix: reported as one line, without a stack trace. */
class StartError extends Error {}

interface RunningService {
  name: string;
  url: string;
  child: ChildProcess;
}

const state: { cluster?: Promise<EmbeddedCluster>; services: RunningService[]; stopping: boolean } = {
  services: [],
  stopping: false,
};

// As early as possible: a signal during start-up must still stop whatever has started.
for (const signal of SIGNALS) process.on(signal, () => void shutdown(0));

const USAGE = `usage: npm start [-- [--host <address>] [--instances <n>] [--json] [--help]]

Starts PostgreSQL (embedded, unless both database URLs are given), the Products service, the
Inventory service and the gateway (the console at /, the API under /api), and stops them all on
Ctrl-C or SIGTERM.

Options:
  --host <address>   address the services listen on (default 127.0.0.1; HOST)
  --instances <n>    instances of each service, 1 to ${MAX_INSTANCES}, sharing its port (default 1)
  --json             JSON log lines in a terminal too (always JSON when not a terminal)
  --help             this text

Environment:
  GATEWAY_PORT, PRODUCTS_PORT, INVENTORY_PORT
                                   ports (3000, 3001, 3002)
  HOST                             as --host
  API_KEYS                         accepted keys, comma-separated (default: the development key)
  PRODUCTS_API_KEY                 key Inventory calls Products with (default: the first of API_KEYS)
  PRODUCTS_DATABASE_URL, INVENTORY_DATABASE_URL
                                   use these databases (both or neither) instead of the embedded one
  INVENTORY_DATABASE_READ_URL      optional standby for Inventory's lag-tolerant reads
  CATALOGO_DATA_DIR                where the embedded PostgreSQL keeps its data (.data)
  CONSOLE_DIR                      the built console the gateway serves (console/dist, built when stale)
  NATS_URL, LOG_LEVEL, NODE_ENV    passed to the services, as is every variable of their configuration
`;

function usageError(message: string): never {
  process.stderr.write(`npm start: ${message}\n`);
  process.stderr.write(USAGE.split('\n\n', 1)[0]!.concat('\n'));
  process.exit(2);
}

function readArgs() {
  let values: { host?: string; json: boolean; instances?: string; help: boolean };
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      options: {
        host: { type: 'string' },
        instances: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (err) {
    usageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const instances = values.instances === undefined ? 1 : Number(values.instances);
  if (!Number.isInteger(instances) || instances < 1 || instances > MAX_INSTANCES) {
    usageError(`--instances must be a whole number from 1 to ${MAX_INSTANCES} (got '${values.instances}')`);
  }
  return { ...values, instances };
}

const args = readArgs();
const format = lineFormatter(
  chooseLogFormat({ tty: Boolean(process.stdout.isTTY), nodeEnv: process.env.NODE_ENV, json: args.json }),
  Boolean(process.stdout.isTTY),
);
const log = pino(
  { base: { service: 'runner' } },
  { write: (line: string) => process.stdout.write(format('runner', line.trimEnd())) },
);
const say = (line: string) => log.info(line);

/** Every line a service writes, through the same formatter as the runner's own. */
function relay(name: string, stream: Readable | null, to: NodeJS.WriteStream): void {
  if (stream)
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) =>
      to.write(format(name, line)),
    );
}

function readPort(variable: string, fallback: number): number {
  const raw = process.env[variable]?.trim();
  const port = raw ? Number(raw) : fallback;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new StartError(`${variable} must be a port number between 1 and 65535 (got '${raw}')`);
  }
  return port;
}

/** Where to reach a service listening on `host` from this machine. */
function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${isIPv6(reachable) ? `[${reachable}]` : reachable}:${port}`;
}

/** Services of a runner killed with SIGKILL may still be shutting down: give them their grace period. */
async function ensurePortFree(port: number, variable: string): Promise<void> {
  for (let waited = 0; (await freePort(port)) !== port; waited += 250) {
    if (waited === 0)
      say(
        `port ${port} is busy; waiting up to ${PORT_WAIT_MS / 1000} s in case an earlier run is still stopping`,
      );
    if (waited >= PORT_WAIT_MS) {
      throw new StartError(
        `port ${port} is taken by another process: stop it, or set ${variable} to another port`,
      );
    }
    await sleep(250);
  }
}

/**
 * 54329 rather than 5432, which a system PostgreSQL may hold; any free port if 54329 is taken. Two
 * runners starting at once (two checkouts, or the runner test beside a developer's `npm start`) can
 * both find 54329 free, and the slower one's PostgreSQL then fails to bind it: retry once elsewhere.
 */
async function startCluster(dataDir: string): Promise<EmbeddedCluster> {
  const options = { dataDir, persistent: true, log: say };
  try {
    return await startEmbeddedPostgres({ ...options, port: 54329 });
  } catch (err) {
    if (!(err instanceof PostgresStartError && /could not (bind|create any)|in use/i.test(err.output)))
      throw err;
    say('PostgreSQL could not listen on port 54329 (taken meanwhile?); trying again on a free port');
    return startEmbeddedPostgres(options);
  }
}

async function openDatabases(): Promise<{ products: string; inventory: string }> {
  const products = process.env.PRODUCTS_DATABASE_URL?.trim();
  const inventory = process.env.INVENTORY_DATABASE_URL?.trim();
  if (products && inventory) {
    say('using PRODUCTS_DATABASE_URL and INVENTORY_DATABASE_URL (no embedded PostgreSQL)');
    return { products, inventory };
  }
  if (products || inventory) {
    throw new StartError('set both PRODUCTS_DATABASE_URL and INVENTORY_DATABASE_URL, or neither');
  }
  const dataDir = resolve(process.env.CATALOGO_DATA_DIR?.trim() || join(ROOT, '.data'), 'postgres');
  // Kept as a promise so that a shutdown during start-up waits for it, then stops it.
  state.cluster = startCluster(dataDir);
  const cluster = await state.cluster;
  await cluster.ensureDatabase('products_db');
  await cluster.ensureDatabase('inventory_db');
  log.info(
    { port: cluster.port, dataDir: cluster.dataDir, pid: cluster.pid },
    `PostgreSQL on 127.0.0.1:${cluster.port}, data in ${cluster.dataDir}`,
  );
  return { products: cluster.url('products_db'), inventory: cluster.url('inventory_db') };
}

function startService(name: string, entry: string, url: string, env: Record<string, string>): RunningService {
  const preload = pathToFileURL(join(ROOT, 'scripts/exit-with-runner.ts')).href;
  const child = spawn(
    process.execPath,
    // Tracing before the service, as its own start script does (off unless OTEL_EXPORTER_OTLP_ENDPOINT).
    [
      '--import',
      'tsx',
      '--import',
      preload,
      '--import',
      '@catalogo/kit/tracing',
      '--conditions=source',
      join(ROOT, entry),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, ...env, OTEL_SERVICE_NAME: name },
      // Own process group: see exit-with-runner.ts. The IPC channel is how a service notices the runner died.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  relay(name, child.stdout, process.stdout);
  relay(name, child.stderr, process.stderr);
  child.once('exit', (code, signal) => {
    if (state.stopping) return;
    log.error(`${name} exited on its own (${signal ?? `code ${code}`}): stopping everything`);
    void shutdown(1);
  });
  child.once('error', (err) => {
    log.error(`${name} could not be started: ${err.message}`);
    void shutdown(1);
  });
  const service = { name, url, child };
  state.services.push(service);
  return service;
}

/** The one entry point: the console at `/`, and `/api` forwarded to the two services. */
function startGateway(host: string, port: number, [products, inventory]: RunningService[]): RunningService {
  return startService('gateway', 'services/gateway/src/server.ts', localUrl(host, port), {
    HOST: host,
    PORT: String(port),
    PRODUCTS_URL: products!.url,
    INVENTORY_URL: inventory!.url,
    CONSOLE_DIR: process.env.CONSOLE_DIR?.trim() || join(ROOT, 'console/dist'),
  });
}

/** One GET on a connection of its own, so that a balancer may hand it to any instance. */
function probe(url: string): Promise<{ status: number; instance: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, timeout: 2_000 }, (response) => {
      response.resume();
      const instance = response.headers['x-instance-id'];
      resolve({
        status: response.statusCode ?? 0,
        instance: typeof instance === 'string' ? instance : undefined,
      });
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** Healthy once `instances` different instances have answered /health 200. */
async function waitHealthy({ name, url }: RunningService, instances: number): Promise<void> {
  const timeoutMs = HEALTH_TIMEOUT_MS + (instances - 1) * HEALTH_TIMEOUT_PER_EXTRA_INSTANCE_MS;
  const deadline = Date.now() + timeoutMs;
  const healthy = new Set<string | undefined>();
  while (Date.now() < deadline) {
    try {
      const { status, instance } = await probe(`${url}/health`);
      const known = healthy.size;
      if (status === 200) healthy.add(instance);
      if (healthy.size >= instances) return;
      // Connections go to the listening instances in turn: while new ones answer, ask again at once.
      if (healthy.size > known) continue;
    } catch {
      // Not listening yet (still migrating or compiling).
    }
    await sleep(200);
  }
  throw new StartError(
    `${name}: ${healthy.size} of ${instances} instances answered 200 on ${url}/health within ${timeoutMs / 1000} s`,
  );
}

/** Resolves once the service has exited and its last lines have been printed. */
async function stopService({ name, child }: RunningService): Promise<void> {
  const closed = child.stdout?.closed && child.stderr?.closed ? Promise.resolve() : once(child, 'close');
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const outcome = await Promise.race([closed, sleep(STOP_GRACE_MS, 'timeout' as const)]);
  if (outcome === 'timeout') {
    say(`${name} did not stop within ${STOP_GRACE_MS / 1000} s: killing it`);
    child.kill('SIGKILL');
    await closed;
  }
}

/**
 * Services first (they may still be finishing requests against the database), then PostgreSQL.
 * A Ctrl-C in a terminal reaches PostgreSQL directly too (same process group); stop() then waits.
 */
async function shutdown(code: number): Promise<void> {
  if (state.stopping) return;
  state.stopping = true;
  await Promise.all(state.services.map(stopService));
  const cluster = await state.cluster?.catch(() => undefined);
  await cluster?.stop();
  say('stopped');
  process.exit(code);
}

function printBanner(
  services: RunningService[],
  gateway: RunningService | undefined,
  apiKey: string,
  userKey: boolean,
  startedAt: number,
): void {
  const key = userKey ? '<one of API_KEYS>' : apiKey;
  const products = gateway?.url ?? services[0]!.url;
  const lines = [
    `ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s` +
      (args.instances > 1 ? `, ${args.instances} instances of each service` : ''),
    ...(gateway ? [`  Console and API: ${gateway.url}/`] : []),
    ...services.map((s) => `  ${s.name.padEnd(10)} ${s.url}   docs: ${s.url}/docs`),
    `  API key    ${userKey ? 'the first of API_KEYS' : `${apiKey} (development key)`}, header X-API-Key`,
    '  try:',
    `    curl -X POST ${products}/api/products -H 'X-API-Key: ${key}' \\`,
    `      -H 'Content-Type: application/vnd.api+json' \\`,
    `      -d '{"data":{"type":"products","attributes":{"nombre":"Café","precio":12.5}}}'`,
    '  Ctrl-C stops everything.',
  ];
  say(lines.join('\n'));
}

async function main(): Promise<void> {
  const startedAt = Date.now();

  const ports = {
    products: readPort('PRODUCTS_PORT', 3001),
    inventory: readPort('INVENTORY_PORT', 3002),
    gateway: readPort('GATEWAY_PORT', 3000),
  };
  if (new Set(Object.values(ports)).size < 3)
    throw new StartError('GATEWAY_PORT, PRODUCTS_PORT and INVENTORY_PORT must differ');
  // The services' own default is every interface (what a container needs); on a workstation, with
  // the published development key, only this machine unless the user says otherwise.
  const host = args.host?.trim() || process.env.HOST?.trim() || '127.0.0.1';
  const inventoryEntry = 'services/inventory/src/server.ts';
  const withInventory = existsSync(join(ROOT, inventoryEntry));
  if (!withInventory) say(`${inventoryEntry} does not exist yet: starting Products only`);
  await ensurePortFree(ports.products, 'PRODUCTS_PORT');
  if (withInventory) await ensurePortFree(ports.inventory, 'INVENTORY_PORT');
  if (withInventory) await ensurePortFree(ports.gateway, 'GATEWAY_PORT');

  const userKeys = process.env.API_KEYS?.trim();
  const apiKeys = userKeys || DEV_API_KEY;
  const firstKey = apiKeys.split(',')[0]!.trim();
  if (!userKeys && host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    log.warn(`listening on ${host} with the published development key: set API_KEYS`);
  }
  // Built while PostgreSQL and the services start; awaited before the gateway, which serves it.
  const consoleBuilt = withInventory ? ensureConsoleBuilt(ROOT, say) : Promise.resolve(false);
  consoleBuilt.catch(() => undefined);
  const databases = await openDatabases();
  // A signal may have arrived while PostgreSQL was starting: shutdown() is then already under way.
  if (state.stopping) return;

  const instances = String(args.instances);
  const products = startService(
    'products',
    'services/products/src/server.ts',
    localUrl(host, ports.products),
    {
      DATABASE_URL: databases.products,
      API_KEYS: apiKeys,
      HOST: host,
      PORT: String(ports.products),
      INSTANCES: instances,
    },
  );
  const started = [products];
  if (withInventory) {
    started.push(
      startService('inventory', inventoryEntry, localUrl(host, ports.inventory), {
        DATABASE_URL: databases.inventory,
        // Inventory's own standby, never a DATABASE_READ_URL of the environment meant for anything.
        DATABASE_READ_URL: process.env.INVENTORY_DATABASE_READ_URL?.trim() ?? '',
        API_KEYS: apiKeys,
        HOST: host,
        PORT: String(ports.inventory),
        INSTANCES: instances,
        PRODUCTS_URL: products.url,
        PRODUCTS_API_KEY: process.env.PRODUCTS_API_KEY?.trim() || firstKey,
      }),
    );
  }
  await Promise.all(started.map((service) => waitHealthy(service, args.instances)));
  // The gateway last: its /health answers 200 only once both services do.
  await consoleBuilt;
  const gateway = withInventory && !state.stopping ? startGateway(host, ports.gateway, started) : undefined;
  if (gateway) await waitHealthy(gateway, 1);
  if (!state.stopping) printBanner(started, gateway, firstKey, Boolean(userKeys), startedAt);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err instanceof StartError) return err.message;
  if (err instanceof PostgresStartError) return `PostgreSQL could not start: ${err.message}`;
  // An error wrapped with a cause is already worded for the user; anything else is a bug: show where.
  if ('cause' in err) return err.cause === undefined ? err.message : `${err.message}: ${String(err.cause)}`;
  return err.stack ?? err.message;
}

main().catch((err: unknown) => {
  // Failures caused by a shutdown already under way (a signal during start-up) are not news.
  if (state.stopping) return;
  log.error(describe(err));
  void shutdown(1);
});
