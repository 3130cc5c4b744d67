/**
 * The embedded PostgreSQL starts from folders its server user cannot use as they are: binaries
 * under a private folder (0700), in a path with spaces, with a read-only parent, without their
 * executable bits and with their libraries private to their owner. It then runs a copy of the binaries from a cache, made once and reused, and any
 * failure is a PostgresStartError with one sentence, never an unhandled 'error' event.
 */
import { chmod, cp, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type Binaries,
  installedBinaries,
  PostgresStartError,
  reachableBinaries,
  serverUser,
  startEmbeddedPostgres,
} from '../scripts/embedded-postgres.js';

let scratch: string;
let privateFolder: string;
let awkward: Binaries;

/** A fresh, world-traversable folder for a cache or a data directory. */
async function openFolder(name: string): Promise<string> {
  const folder = join(scratch, name);
  await mkdir(folder, { recursive: true, mode: 0o755 });
  return folder;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'catalogo-embedded-'));
  await chmod(scratch, 0o755);
  privateFolder = join(scratch, 'home');
  await mkdir(privateFolder, { mode: 0o700 });
  const installed = await installedBinaries();
  const parent = join(privateFolder, 'a folder with spaces');
  await cp(installed.dir, join(parent, 'native'), { recursive: true, verbatimSymlinks: true });
  for (const file of await readdir(join(parent, 'native', 'bin'))) {
    await chmod(join(parent, 'native', 'bin', file), 0o644);
  }
  // As an install made under a umask of 077 leaves it.
  await chmod(join(parent, 'native', 'lib'), 0o700);
  await chmod(parent, 0o555);
  awkward = { ...installed, dir: join(parent, 'native') };
}, 60_000);

afterAll(async () => {
  await chmod(join(privateFolder, 'a folder with spaces'), 0o755).catch(() => {});
  await rm(scratch, { recursive: true, force: true });
});

it('starts from binaries it cannot run in place, copying them once to a cache reused later', {
  timeout: 120_000,
}, async () => {
  const cacheRoot = await openFolder('cache one');
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  // The data directory inside the private folder too: as root it moves to the temp folder.
  const cluster = await startEmbeddedPostgres({
    dataDir: join(privateFolder, 'data dir'),
    persistent: false,
    binaries: awkward,
    cacheRoot,
    log,
  });
  try {
    await cluster.ensureDatabase('layout_check');
  } finally {
    await cluster.stop();
  }
  expect(lines.join('\n')).toMatch(
    /cannot run the PostgreSQL binaries in .*a folder with spaces.*: copied them to /,
  );
  const cached = join(cacheRoot, `catalogo-postgres-${awkward.version}`);
  expect((await stat(cached)).mode & 0o777).toBe(0o755);

  lines.length = 0;
  const again = await startEmbeddedPostgres({
    dataDir: join(await openFolder('data two'), 'data'),
    persistent: false,
    binaries: awkward,
    cacheRoot,
    log,
  });
  await again.stop();
  expect(lines.join('\n')).toContain(`using the copy in ${cached}`);
});

it('two runs filling the cache at once both end up with one complete copy', {
  timeout: 120_000,
}, async () => {
  const cacheRoot = await openFolder('cache race');
  const user = await serverUser();
  const results = await Promise.all([
    reachableBinaries(awkward, user, () => {}, cacheRoot),
    reachableBinaries(awkward, user, () => {}, cacheRoot),
  ]);
  expect(results[0]!.dir).toBe(join(cacheRoot, `catalogo-postgres-${awkward.version}`));
  expect(results[1]!.dir).toBe(results[0]!.dir);
  // No half-written staging copy is left behind.
  expect(await readdir(cacheRoot)).toEqual([`catalogo-postgres-${awkward.version}`]);
});

it('refuses a cached copy somebody else could have written', async () => {
  const cacheRoot = await openFolder('cache planted');
  const planted = join(cacheRoot, `catalogo-postgres-${awkward.version}`);
  await mkdir(planted);
  await chmod(planted, 0o777);
  const started = startEmbeddedPostgres({
    dataDir: join(await openFolder('data planted'), 'data'),
    persistent: false,
    binaries: awkward,
    cacheRoot,
  });
  await expect(started).rejects.toThrow(PostgresStartError);
  await expect(started).rejects.toThrow(`${planted} is not a folder owned by you and writable only by you`);
});

it('a failure to start is one PostgresStartError sentence, not an unhandled error event', async () => {
  const dataFile = join(await openFolder('data is a file'), 'data');
  await writeFile(dataFile, 'not a folder');
  const started = startEmbeddedPostgres({ dataDir: join(dataFile, 'postgres'), persistent: false });
  await expect(started).rejects.toThrow(PostgresStartError);
  await expect(started).rejects.toThrow(/^the data folder .* cannot be created \(.*\)$/);

  const missing = { ...awkward, dir: join(scratch, 'no binaries here') };
  const nowhere = startEmbeddedPostgres({
    dataDir: join(await openFolder('data missing'), 'data'),
    persistent: false,
    binaries: missing,
    cacheRoot: await openFolder('cache missing'),
  });
  await expect(nowhere).rejects.toThrow(PostgresStartError);
  await expect(nowhere).rejects.toThrow(
    /cannot run the PostgreSQL binaries in .*, and copying them to .* failed/,
  );
});

it('stores UTF-8 with Unicode case rules whatever the locale of whoever starts it', {
  timeout: 60_000,
}, async () => {
  const saved = { LANG: process.env.LANG, LC_ALL: process.env.LC_ALL };
  // A login without LANG, as `su - someone` gives: left to the environment, initdb chose SQL_ASCII.
  process.env.LANG = 'C';
  process.env.LC_ALL = 'C';
  let cluster: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  try {
    cluster = await startEmbeddedPostgres({
      dataDir: join(await openFolder('data C'), 'data'),
      persistent: false,
    });
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  const client = new pg.Client({ connectionString: cluster.url('postgres') });
  try {
    await client.connect();
    const { rows } = await client.query(
      "SELECT current_setting('server_encoding') AS encoding, lower('ÉCOLE') AS lower, length('ñandú') AS length",
    );
    expect(rows[0]).toEqual({ encoding: 'UTF8', lower: 'école', length: 5 });
  } finally {
    await client.end();
    await cluster.stop();
  }
});
