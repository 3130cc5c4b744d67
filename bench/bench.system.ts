import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type EmbeddedCluster, freePort, startEmbeddedPostgres } from '../scripts/embedded-postgres.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const RESULTS_DIR = join(ROOT, 'bench/results');

export { freePort } from '../scripts/embedded-postgres.js';

export interface Databases {
  products: string;
  inventory: string;
  /** Where they live, for the report. */
  description: string;
  /** The embedded postmaster, whose CPU (with its backends') the bench accounts for. */
  postmasterPid: number | undefined;
  stop: () => Promise<void>;
}

/** The given databases, or a throw-away embedded PostgreSQL in the temp folder. */
export async function openDatabases(given: { products?: string; inventory?: string }): Promise<Databases> {
  if (given.products && given.inventory) {
    return {
      products: given.products,
      inventory: given.inventory,
      description: `given URLs (${new URL(given.products).host}, ${new URL(given.inventory).host})`,
      postmasterPid: undefined,
      stop: async () => {},
    };
  }
  const parent = await mkdtemp(join(tmpdir(), 'catalogo-bench-pg-'));
  // As root, PostgreSQL runs as the postgres user, who must be able to walk into the folder.
  await chmod(parent, 0o755);
  const cluster: EmbeddedCluster = await startEmbeddedPostgres({
    dataDir: join(parent, 'data'),
    persistent: false,
  });
  await cluster.ensureDatabase('products_db');
  await cluster.ensureDatabase('inventory_db');
  return {
    products: cluster.url('products_db'),
    inventory: cluster.url('inventory_db'),
    description: `embedded PostgreSQL (port ${cluster.port}, ${cluster.dataDir})`,
    postmasterPid: Number((await readFile(join(cluster.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]),
    // A Ctrl-C in the terminal reaches PostgreSQL too, and stop() never resolves for a server
    // that has already exited: bounded wait, then the folder goes either way.
    stop: async () => {
      await Promise.race([cluster.stop(), sleep(10_000)]);
      await rm(parent, { recursive: true, force: true });
    },
  };
}

/** What a service is given, and nothing else from the bench's environment. */
export function serviceEnv(
  options: { poolMax: number; logLevel: string; instances?: number },
  databaseUrl: string,
  apiKey: string,
  otlpUrl?: string,
): Record<string, string> {
  return {
    // With tracing, the bench's own OTEL_* settings (a sampler, say) go to the services as well.
    ...(otlpUrl
      ? {
          ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('OTEL_'))),
          OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
        }
      : {}),
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: String(options.poolMax),
    INSTANCES: String(options.instances ?? 1),
    API_KEYS: apiKey,
    LOG_LEVEL: options.logLevel,
  };
}

/** The gateway as deployed: production mode, the services' log level, nothing else inherited. */
export function gatewayEnv(options: { logLevel: string }): Record<string, string> {
  return {
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    NODE_ENV: 'production',
    LOG_LEVEL: options.logLevel,
  };
}

export interface ChildServer {
  name: string;
  url: string;
  pid: number | undefined;
  stop: () => Promise<void>;
}

const EXIT_WITH_PARENT = pathToFileURL(join(ROOT, 'bench/exit-with-bench.ts')).href;

/**
 * Runs a TypeScript entry point as its own Node process on a free loopback port, its output going
 * to `bench/results/<name>.log` rather than the terminal. The IPC channel closes however the bench
 * dies, and the child then stops itself (see exit-with-bench.ts).
 */
export async function startChild(
  name: string,
  entry: string,
  env: Record<string, string>,
  nodeFlags: string[] = [],
): Promise<ChildServer> {
  const port = await freePort();
  const log = await open(join(RESULTS_DIR, `${name}.log`), 'w');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', EXIT_WITH_PARENT, '--conditions=source', ...nodeFlags, join(ROOT, entry)],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env, HOST: '127.0.0.1', PORT: String(port) },
      stdio: ['ignore', log.fd, log.fd, 'ipc'],
    },
  );
  await log.close();
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const server = {
    name,
    url,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const outcome = await Promise.race([exited, sleep(15_000, 'timeout' as const)]);
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  // Several instances load and build at once, each as slowly as one on a busy machine.
  const waitMs = 60_000 * Number(env.INSTANCES ?? 1);
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(
        `${name} exited with code ${child.exitCode} at start-up: see bench/results/${name}.log`,
      );
    }
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200) return server;
    } catch {
      // Not listening yet (compiling, migrating).
    }
    await sleep(100);
  }
  await server.stop();
  throw new Error(
    `${name} did not answer 200 on /health within ${waitMs / 1000} s: see bench/results/${name}.log`,
  );
}
