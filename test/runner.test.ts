/**
 * The `npm start` runner as a user meets it: it boots PostgreSQL and the services, serves requests,
 * stops on SIGTERM with exit code 0 leaving no PostgreSQL and no service behind, and starts again
 * after it was killed with SIGKILL (a stale postmaster, and services of the killed run still
 * holding their ports while they shut down).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Runner {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const runners: Runner[] = [];
const postmasters: number[] = [];
let dataRoot: string;
let env: NodeJS.ProcessEnv;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function startRunner(): Runner {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const runner = { child, output: () => output, exited };
  runners.push(runner);
  return runner;
}

/** Waits for the banner; returns the data directory the runner reported and its postmaster's pid. */
async function waitReady(runner: Runner): Promise<{ dataDir: string; postmaster: number }> {
  const deadline = Date.now() + 90_000;
  while (!runner.output().includes('ready in')) {
    if (runner.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the runner did not become ready:\n${runner.output()}`);
    }
    await sleep(100);
  }
  const dataDir = /data in (\S+)/.exec(runner.output())![1]!;
  const postmaster = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  postmasters.push(postmaster);
  return { dataDir, postmaster };
}

async function exitCodeWithin(runner: Runner, ms: number): Promise<number | null | 'timeout'> {
  return Promise.race([runner.exited, sleep(ms, 'timeout' as const)]);
}

async function waitDead(pid: number, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(50)) {
    if (!isAlive(pid)) return true;
  }
  return !isAlive(pid);
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

let productsPort: number;
let inventoryPort: number;

beforeAll(async () => {
  dataRoot = await mkdtemp(join(tmpdir(), 'catalogo-runner-'));
  // As root PostgreSQL runs as `postgres`, which must be able to walk into the data directory.
  await chmod(dataRoot, 0o755);
  productsPort = await freePort();
  inventoryPort = await freePort();
  env = { ...process.env, PRODUCTS_PORT: String(productsPort), INVENTORY_PORT: String(inventoryPort) };
  env.CATALOGO_DATA_DIR = dataRoot;
  env.LOG_LEVEL = 'warn';
  // The runner's own defaults, not whatever the machine running the tests has set.
  for (const name of [
    'API_KEYS',
    'PRODUCTS_API_KEY',
    'PRODUCTS_DATABASE_URL',
    'INVENTORY_DATABASE_URL',
    'NATS_URL',
  ]) {
    delete env[name];
  }
});

afterAll(async () => {
  for (const { child } of runners) if (child.exitCode === null) child.kill('SIGKILL');
  for (const pid of postmasters) if (isAlive(pid)) process.kill(pid, 'SIGINT');
  for (const pid of postmasters) await waitDead(pid, 10_000);
  await rm(dataRoot, { recursive: true, force: true });
});

it('serves, stops cleanly on SIGTERM, and recovers after being killed', { timeout: 240_000 }, async () => {
  const products = `http://127.0.0.1:${productsPort}`;

  const first = startRunner();
  const { postmaster } = await waitReady(first);
  expect((await fetch(`${products}/health`)).status, first.output()).toBe(200);
  const created = await fetch(`${products}/api/products`, {
    method: 'POST',
    headers: { 'X-API-Key': 'dev-api-key', 'Content-Type': 'application/vnd.api+json' },
    body: JSON.stringify({ data: { type: 'products', attributes: { nombre: 'Café', precio: 12.5 } } }),
  });
  expect(created.status, `${await created.text()}\n${first.output()}`).toBe(201);
  const location = created.headers.get('location')!;

  first.child.kill('SIGTERM');
  expect(await exitCodeWithin(first, 15_000), first.output()).toBe(0);
  expect(await waitDead(postmaster, 2_000)).toBe(true);
  expect(await portFree(productsPort)).toBe(true);
  expect(await portFree(inventoryPort)).toBe(true);

  // Killed outright: PostgreSQL is left running and the services are still stopping when the
  // next run starts.
  const killed = startRunner();
  await waitReady(killed);
  killed.child.kill('SIGKILL');
  await killed.exited;

  const again = startRunner();
  const restarted = await waitReady(again);
  expect((await fetch(`${products}/health`)).status, again.output()).toBe(200);
  // Persistent data: the product of the first run is still there.
  const stored = await fetch(`${products}${location}`, { headers: { 'X-API-Key': 'dev-api-key' } });
  expect(stored.status).toBe(200);

  again.child.kill('SIGTERM');
  expect(await exitCodeWithin(again, 15_000), again.output()).toBe(0);
  expect(await waitDead(restarted.postmaster, 2_000)).toBe(true);
  for (const pid of postmasters) expect(isAlive(pid)).toBe(false);
});
