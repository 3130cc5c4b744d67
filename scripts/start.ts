/**
 * `npm start`: the whole system on one machine. An embedded PostgreSQL holding `products_db` and
 * `inventory_db` (none when PRODUCTS_DATABASE_URL and INVENTORY_DATABASE_URL are both given), then
 * the Products and Inventory services as child processes. Ctrl-C or SIGTERM stops the services,
 * then PostgreSQL, and leaves no process behind; a service that dies on its own stops everything.
 *
 * Environment: PRODUCTS_PORT (3001), INVENTORY_PORT (3002), API_KEYS, PRODUCTS_API_KEY, NATS_URL,
 * LOG_LEVEL, PRODUCTS_DATABASE_URL + INVENTORY_DATABASE_URL, CATALOGO_DATA_DIR (`.data`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEV_API_KEY } from '../packages/kit/src/config.js';
import type { EmbeddedCluster } from './embedded-postgres.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STOP_GRACE_MS = 10_000;
const PORT_WAIT_MS = 10_000;
const HEALTH_TIMEOUT_MS = 60_000;
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

const say = (line: string) => process.stdout.write(`[start] ${line}\n`);

// As early as possible: a signal during start-up must still stop whatever has started.
for (const signal of SIGNALS) process.on(signal, () => void shutdown(0));

/**
 * embedded-postgres, on import, makes SIGINT/SIGTERM/SIGHUP stop PostgreSQL and exit at once (code
 * 130/143) — before the services have stopped. The runner owns those signals, so the handlers that
 * import added are removed (its exit hook, which stops a server still running, stays).
 */
const before = new Map(SIGNALS.map((signal) => [signal, process.listeners(signal)]));
const { freePort, startEmbeddedPostgres } = await import('./embedded-postgres.js');
for (const signal of SIGNALS) {
  for (const listener of process.listeners(signal)) {
    if (!before.get(signal)?.includes(listener)) process.removeListener(signal, listener);
  }
}

function readPort(variable: string, fallback: number): number {
  const raw = process.env[variable]?.trim();
  const port = raw ? Number(raw) : fallback;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new StartError(`${variable} must be a port number between 1 and 65535 (got '${raw}')`);
  }
  return port;
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
  } catch {
    say('PostgreSQL did not start on port 54329 (taken meanwhile?); trying again on a free port');
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
  say(`PostgreSQL on 127.0.0.1:${cluster.port}, data in ${cluster.dataDir}`);
  return { products: cluster.url('products_db'), inventory: cluster.url('inventory_db') };
}

function startService(
  name: string,
  entry: string,
  port: number,
  env: Record<string, string>,
): RunningService {
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
      env: { ...process.env, ...env, PORT: String(port), OTEL_SERVICE_NAME: name },
      // Own process group: see exit-with-runner.ts. The IPC channel is how a service notices the runner died.
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  child.once('exit', (code, signal) => {
    if (state.stopping) return;
    process.stderr.write(
      `[start] ${name} exited on its own (${signal ?? `code ${code}`}): stopping everything\n`,
    );
    void shutdown(1);
  });
  child.once('error', (err) => {
    process.stderr.write(`[start] ${name} could not be started: ${err.message}\n`);
    void shutdown(1);
  });
  const service = { name, url: `http://127.0.0.1:${port}`, child };
  state.services.push(service);
  return service;
}

async function waitHealthy({ name, url }: RunningService): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200) return;
    } catch {
      // Not listening yet (still migrating or compiling).
    }
    await sleep(200);
  }
  throw new StartError(`${name} did not answer 200 on ${url}/health within ${HEALTH_TIMEOUT_MS / 1000} s`);
}

async function stopService({ name, child }: RunningService): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const outcome = await Promise.race([exited, sleep(STOP_GRACE_MS, 'timeout' as const)]);
  if (outcome === 'timeout') {
    say(`${name} did not stop within ${STOP_GRACE_MS / 1000} s: killing it`);
    child.kill('SIGKILL');
    await exited;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once the postmaster of `dataDir` is gone: its lock file removed, or its pid dead. */
async function postmasterGone(dataDir: string): Promise<void> {
  for (;;) {
    const pid = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').then(
      (text) => Number(text.split('\n')[0]),
      () => undefined,
    );
    if (pid === undefined || !isAlive(pid)) return;
    await sleep(100);
  }
}

/**
 * Services first (they may still be finishing requests against the database), then PostgreSQL.
 * A Ctrl-C in a terminal reaches PostgreSQL directly too (same process group), and the library's
 * stop() never resolves for a server that already exited, hence the race with the lock file.
 */
async function shutdown(code: number): Promise<void> {
  if (state.stopping) return;
  state.stopping = true;
  await Promise.all(state.services.map(stopService));
  const cluster = await state.cluster?.catch(() => undefined);
  if (cluster) await Promise.race([cluster.stop(), postmasterGone(cluster.dataDir)]);
  say('stopped');
  process.exit(code);
}

function printBanner(services: RunningService[], apiKey: string, userKey: boolean, startedAt: number): void {
  const key = userKey ? '<one of API_KEYS>' : apiKey;
  const products = services[0]!.url;
  const lines = [
    `ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
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

  const ports = { products: readPort('PRODUCTS_PORT', 3001), inventory: readPort('INVENTORY_PORT', 3002) };
  if (ports.products === ports.inventory)
    throw new StartError('PRODUCTS_PORT and INVENTORY_PORT must differ');
  const inventoryEntry = 'services/inventory/src/server.ts';
  const withInventory = existsSync(join(ROOT, inventoryEntry));
  if (!withInventory) say(`${inventoryEntry} does not exist yet: starting Products only`);
  await ensurePortFree(ports.products, 'PRODUCTS_PORT');
  if (withInventory) await ensurePortFree(ports.inventory, 'INVENTORY_PORT');

  const userKeys = process.env.API_KEYS?.trim();
  const apiKeys = userKeys || DEV_API_KEY;
  const firstKey = apiKeys.split(',')[0]!.trim();
  const databases = await openDatabases();
  // A signal may have arrived while PostgreSQL was starting: shutdown() is then already under way.
  if (state.stopping) return;

  const products = startService('products', 'services/products/src/server.ts', ports.products, {
    DATABASE_URL: databases.products,
    API_KEYS: apiKeys,
  });
  const started = [products];
  if (withInventory) {
    started.push(
      startService('inventory', inventoryEntry, ports.inventory, {
        DATABASE_URL: databases.inventory,
        API_KEYS: apiKeys,
        PRODUCTS_URL: products.url,
        PRODUCTS_API_KEY: process.env.PRODUCTS_API_KEY?.trim() || firstKey,
      }),
    );
  }
  await Promise.all(started.map(waitHealthy));
  if (!state.stopping) printBanner(started, firstKey, Boolean(userKeys), startedAt);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err instanceof StartError) return err.message;
  // An error wrapped with a cause is already worded for the user; anything else is a bug: show where.
  if ('cause' in err) return err.cause === undefined ? err.message : `${err.message}: ${String(err.cause)}`;
  return err.stack ?? err.message;
}

main().catch((err: unknown) => {
  // Failures caused by a shutdown already under way (a signal during start-up) are not news.
  if (state.stopping) return;
  process.stderr.write(`[start] ${describe(err)}\n`);
  void shutdown(1);
});
