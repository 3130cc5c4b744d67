/**
 * `npm run drill:failover`: a database failover under load, end to end, on this machine.
 *
 * A PostgreSQL primary and a synchronous streaming standby (so a commit is acknowledged only once
 * the standby has it), HAProxy in front sending connections to whichever one answers
 * `pg_is_in_recovery() = false` (the way Patroni deployments route), the Products and Inventory
 * services as child processes connected through HAProxy, and buyers purchasing without pause.
 * The primary is killed with SIGKILL, the standby promoted, and the drill reports: purchases
 * acknowledged (201) before the kill that are missing afterwards (must be 0), how long no purchase
 * succeeded, and every answer clients saw that was not a 201 (503s are expected; a 500 fails it).
 * The services are never restarted.
 *
 * The distribution's PostgreSQL 15 binaries (/usr/lib/postgresql/15/bin) run the pair, not the
 * embedded PostgreSQL 18 from npm: that package ships initdb, pg_ctl and postgres but no
 * pg_basebackup, and a standby must be a copy made by the same major version. The services support
 * PostgreSQL 15 (the compose file runs it). PG_BIN overrides the directory.
 *
 * Options: --buy-seconds <s> before the kill (default 4), --after-seconds <s> of buying after the
 * service is back (default 4), --buyers <n> concurrent buyers (default 8), --keep to leave the
 * temporary directory for inspection. Exit code 0 when nothing acknowledged was lost and no 500 was seen.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const API_KEY = 'drill-key';
const run = promisify(execFile);

const { values: options } = parseArgs({
  // `npm run drill:failover -- --buyers 4` passes the separator through on some npm versions.
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    'buy-seconds': { type: 'string', default: '4' },
    'after-seconds': { type: 'string', default: '4' },
    buyers: { type: 'string', default: '8' },
    keep: { type: 'boolean', default: false },
  },
});

const log = (line: string) => process.stdout.write(`[drill] ${line}\n`);
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` OS user. */
const asRoot = userInfo().uid === 0;
async function pgCommand(binary: string, args: string[]): Promise<void> {
  const [file, argv] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, binary), ...args]]
    : [join(PG_BIN, binary), args];
  // Waits for the command's exit, not for its output to close: `pg_ctl start` leaves a postmaster
  // behind that may hold inherited descriptors for as long as it runs.
  const child = spawn(file, argv, { cwd: '/tmp', stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${binary} ${args.join(' ')} failed (${code}): ${stderr}`);
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function query<T extends pg.QueryResultRow>(
  port: number,
  database: string,
  sql: string,
  params: unknown[] = [],
) {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database,
    connectionTimeoutMillis: 2_000,
  });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

interface Server {
  dir: string;
  port: number;
}

async function postmasterPid(server: Server): Promise<number> {
  return Number((await readFile(join(server.dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

async function startPostgres(server: Server): Promise<void> {
  await pgCommand('pg_ctl', [
    '-D',
    server.dir,
    '-l',
    join(server.dir, 'server.log'),
    '-w',
    '-t',
    '60',
    'start',
  ]);
  cleanups.push(async () => {
    await pgCommand('pg_ctl', ['-D', server.dir, '-m', 'immediate', 'stop']).catch(() => undefined);
  });
}

/** The primary, then the standby as a base backup of it that streams synchronously. */
async function startPair(work: string): Promise<{ primary: Server; standby: Server }> {
  const primary = { dir: join(work, 'primary'), port: await freePort() };
  const standby = { dir: join(work, 'standby'), port: await freePort() };
  await pgCommand('initdb', [
    '-D',
    primary.dir,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-instructions',
  ]);
  await writeFile(
    join(primary.dir, 'postgresql.auto.conf'),
    [
      `port = ${primary.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = ''`,
      'wal_level = replica',
      'max_wal_senders = 5',
      'hot_standby = on',
      'synchronous_commit = on',
      'max_connections = 100',
      '',
    ].join('\n'),
  );
  if (asRoot) await chown(join(primary.dir, 'postgresql.auto.conf'), ...(await postgresIds()));
  await startPostgres(primary);
  for (const db of ['products_db', 'inventory_db'])
    await query(primary.port, 'postgres', `CREATE DATABASE ${db}`);

  // -R writes standby.signal and primary_conninfo; -X stream copies the WAL written meanwhile.
  await pgCommand('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(primary.port),
    '-U',
    'postgres',
    '-D',
    standby.dir,
    '-R',
    '-X',
    'stream',
  ]);
  const auto = join(standby.dir, 'postgresql.auto.conf');
  await writeFile(
    auto,
    `${await readFile(auto, 'utf8')}port = ${standby.port}\n` +
      `primary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=standby'\n` +
      // Once promoted it has no standby of its own: waiting for one would stop every commit.
      `synchronous_standby_names = ''\n`,
  );
  await startPostgres(standby);
  // From now on a commit returns only once the standby named `standby` has flushed it: nothing
  // acknowledged can be lost with the primary. (Set only now: before the standby exists, every
  // commit would wait for it.)
  await query(primary.port, 'postgres', `ALTER SYSTEM SET synchronous_standby_names = 'standby'`);
  await query(primary.port, 'postgres', 'SELECT pg_reload_conf()');
  await waitFor('the standby to stream synchronously', async () => {
    const rows = await query<{ sync_state: string }>(
      primary.port,
      'postgres',
      'SELECT sync_state FROM pg_stat_replication',
    );
    return rows[0]?.sync_state === 'sync';
  });
  return { primary, standby };
}

let postgresUid: [number, number] | undefined;
async function postgresIds(): Promise<[number, number]> {
  if (!postgresUid) {
    const { stdout: uid } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    postgresUid = [Number(uid), Number(gid)];
  }
  return postgresUid;
}

/**
 * HAProxy with a primary check: an external check asks each server `pg_is_in_recovery()`, and only
 * the one answering `f` receives connections. HAProxy's own pgsql-check only proves a login works,
 * which a standby passes too. Connections to a server that went down are cut at once, so clients
 * reconnect to the new primary instead of waiting on a dead socket.
 */
async function startHaproxy(work: string, servers: Server[]): Promise<number> {
  const port = await freePort();
  const check = join(work, 'is-primary.sh');
  const psql = join(PG_BIN, 'psql');
  // HAProxy calls it with: <proxy address> <proxy port> <server address> <server port>.
  await writeFile(
    check,
    `#!/bin/sh\n[ "$(${psql} -h "$3" -p "$4" -U postgres -d postgres -XtAc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]\n`,
  );
  await chmod(check, 0o755);
  const config = join(work, 'haproxy.cfg');
  await writeFile(
    config,
    [
      'global',
      '  external-check',
      '  insecure-fork-wanted',
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 1h',
      '  timeout server 1h',
      `frontend postgres`,
      `  bind 127.0.0.1:${port}`,
      '  default_backend primary',
      'backend primary',
      '  option external-check',
      `  external-check command ${check}`,
      '  external-check path "/usr/bin:/bin"',
      '  default-server inter 300ms fall 1 rise 1 on-marked-down shutdown-sessions',
      ...servers.map((s, i) => `  server pg${i} 127.0.0.1:${s.port} check`),
      '',
    ].join('\n'),
  );
  const haproxy = spawn('haproxy', ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(haproxy);
  let stderr = '';
  haproxy.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  haproxy.once('exit', (code) => {
    if (code !== null && code !== 0) log(`haproxy exited with ${code}: ${stderr}`);
  });
  await waitFor(
    'HAProxy to route to the primary',
    async () => (await query(port, 'postgres', 'SELECT 1')).length === 1,
    20_000,
  );
  return port;
}

async function ensureHaproxy(): Promise<void> {
  try {
    await run('haproxy', ['-v']);
  } catch {
    log('haproxy is not installed: installing the distribution package (apt-get install -y haproxy)');
    await run('apt-get', ['install', '-y', 'haproxy'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
}

/** A service as its own process, as in production; resolves once /health answers 200. */
async function startService(name: 'products' | 'inventory', env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', `services/${name}/src/server.ts`],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...env,
        PORT: String(port),
        HOST: '127.0.0.1',
        API_KEYS: API_KEY,
        LOG_LEVEL: 'warn',
        NODE_ENV: 'development',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${name} to be healthy`, async () => (await fetch(`${url}/health`)).status === 200);
  return url;
}

interface Outcome {
  /** When the request was sent and when its answer arrived, in ms since buying began. */
  at: number;
  done: number;
  status: number | 'network';
  id?: number;
}

async function main(): Promise<number> {
  await ensureHaproxy();
  const work = await mkdtemp(join(tmpdir(), 'drill-failover-'));
  if (asRoot) {
    // mkdtemp makes the folder private; the postgres user must create the data directories in it.
    await chown(work, ...(await postgresIds()));
  }
  cleanups.push(async () => {
    if (!options.keep) await rm(work, { recursive: true, force: true });
  });
  log(`working in ${work}; PostgreSQL from ${PG_BIN}`);

  const { primary, standby } = await startPair(work);
  log(`primary on ${primary.port}, synchronous standby on ${standby.port}`);
  const router = await startHaproxy(work, [primary, standby]);
  log(`HAProxy on ${router}, routing to the server that is not in recovery`);

  const products = await startService('products', {
    DATABASE_URL: `postgres://postgres@127.0.0.1:${router}/products_db`,
  });
  const inventory = await startService('inventory', {
    DATABASE_URL: `postgres://postgres@127.0.0.1:${router}/inventory_db`,
    PRODUCTS_URL: products,
    PRODUCTS_API_KEY: API_KEY,
  });
  log(`products ${products}, inventory ${inventory}`);

  const headers = { 'x-api-key': API_KEY, 'content-type': 'application/vnd.api+json' };
  const created = await fetch(`${products}/api/products`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ data: { type: 'products', attributes: { nombre: 'Simulacro', precio: 1.25 } } }),
  });
  const productId = Number(((await created.json()) as { data: { id: string } }).data.id);
  await fetch(`${inventory}/api/inventory/${productId}`, {
    method: 'PATCH',
    headers,
    body: JSON.stringify({
      data: { type: 'inventories', id: String(productId), attributes: { cantidad: 10_000_000 } },
    }),
  });

  const outcomes: Outcome[] = [];
  const started = performance.now();
  let buying = true;
  const buyers = Array.from({ length: Number(options.buyers) }, async () => {
    while (buying) {
      const at = performance.now() - started;
      try {
        const res = await fetch(`${inventory}/api/purchases`, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            data: { type: 'purchases', attributes: { producto_id: productId, cantidad: 1 } },
          }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json()) as { data?: { id: string } };
        outcomes.push({
          at,
          done: performance.now() - started,
          status: res.status,
          ...(res.status === 201 ? { id: Number(body.data?.id) } : {}),
        });
        // A client honours Retry-After loosely: a short pause instead of hammering a 503.
        if (res.status !== 201) await sleep(50);
      } catch {
        outcomes.push({ at, done: performance.now() - started, status: 'network' });
        await sleep(50);
      }
    }
  });

  await sleep(Number(options['buy-seconds']) * 1000);
  const pid = await postmasterPid(primary);
  process.kill(pid, 'SIGKILL');
  const killedAt = performance.now() - started;
  log(`primary (pid ${pid}) killed with SIGKILL at ${(killedAt / 1000).toFixed(2)} s`);
  await pgCommand('pg_ctl', ['-D', standby.dir, '-w', 'promote']);
  const promotedAt = performance.now() - started;
  log(`standby promoted ${((promotedAt - killedAt) / 1000).toFixed(2)} s after the kill`);

  await waitFor(
    'a purchase to succeed again',
    async () => outcomes.some((o) => o.status === 201 && o.at > promotedAt),
    60_000,
  );
  await sleep(Number(options['after-seconds']) * 1000);
  buying = false;
  await Promise.all(buyers);

  // Every purchase acknowledged before the kill must be on the new primary.
  const ackedBefore = outcomes.filter((o) => o.status === 201 && o.at < killedAt).map((o) => o.id!);
  const acked = outcomes.filter((o) => o.status === 201).map((o) => o.id!);
  const found = await query<{ id: number }>(
    standby.port,
    'inventory_db',
    'SELECT id FROM historial_compras WHERE id = ANY($1)',
    [acked],
  );
  const present = new Set(found.map((r) => r.id));
  const lostBefore = ackedBefore.filter((id) => !present.has(id));
  const lostAll = acked.filter((id) => !present.has(id));

  const lastOkBefore = Math.max(
    ...outcomes.filter((o) => o.status === 201 && o.done < killedAt).map((o) => o.done),
  );
  const firstOkAfter = Math.min(
    ...outcomes.filter((o) => o.status === 201 && o.at > killedAt).map((o) => o.done),
  );
  const failures = new Map<string, number>();
  for (const o of outcomes)
    if (o.status !== 201) failures.set(String(o.status), (failures.get(String(o.status)) ?? 0) + 1);
  const errors = [...failures.entries()].map(([status, n]) => `${n} × ${status}`).join(', ') || 'none';
  const fiveHundreds = outcomes.filter(
    (o) => typeof o.status === 'number' && o.status >= 500 && o.status !== 503,
  ).length;

  log(`purchases acknowledged: ${acked.length} (${ackedBefore.length} before the kill)`);
  log(
    `acknowledged before the kill and missing afterwards: ${lostBefore.length}; acknowledged at any time and missing: ${lostAll.length}`,
  );
  log(
    `without service: ${((firstOkAfter - killedAt) / 1000).toFixed(2)} s from the kill to the next acknowledged purchase ` +
      `sent after it (${((firstOkAfter - lastOkBefore) / 1000).toFixed(2)} s since the last acknowledgement before it)`,
  );
  const failed = outcomes.filter((o) => o.status !== 201);
  const lastFailure = failed.length > 0 ? Math.max(...failed.map((o) => o.done)) : killedAt;
  const afterBack = outcomes.filter((o) => o.at > lastFailure).length;
  log(`answers other than 201: ${errors}`);
  log(
    `last answer other than 201 received ${((lastFailure - killedAt) / 1000).toFixed(2)} s after the kill; ` +
      `${afterBack} purchases after it, all acknowledged`,
  );
  const ok = lostAll.length === 0 && fiveHundreds === 0 && !failures.has('network');
  log(ok ? 'PASS: nothing acknowledged was lost, clients saw only 503s' : 'FAIL');
  return ok ? 0 : 1;
}

async function shutdown(): Promise<void> {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
  for (const cleanup of cleanups.reverse()) await cleanup();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void shutdown().then(() => process.exit(130));
  });
}

let code = 1;
try {
  code = await main();
} catch (err) {
  log(`drill failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await shutdown();
}
process.exit(code);
