import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../packages/kit/src/db.js';
import { PostgresStartError, startEmbeddedPostgres } from '../../scripts/embedded-postgres.js';
import { MIGRATIONS_DIR as INVENTORY_MIGRATIONS } from '../../services/inventory/src/migrations.js';
import { MIGRATIONS_DIR as PRODUCTS_MIGRATIONS } from '../../services/products/src/migrations.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser URL of the test PostgreSQL server, database `postgres`. */
    adminUrl: string;
    /** Migrated template databases, one per service; each test file clones its own. */
    templates: { products: string; inventory: string };
  }
}

const withDatabase = (url: string, database: string) => {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
};

/**
 * Starts one PostgreSQL for the whole run — the machine's own when TEST_DATABASE_URL is given,
 * otherwise an embedded one in the temp folder — and migrates one template database per service.
 */
export default async function setup(project: TestProject) {
  const given = process.env.TEST_DATABASE_URL;
  let stopCluster: (() => Promise<void>) | undefined;
  let adminUrl: string;
  if (given) {
    adminUrl = withDatabase(given, 'postgres');
    console.log(`[tests] PostgreSQL from TEST_DATABASE_URL (${new URL(given).host})`);
  } else {
    const dataDir = await mkdtemp(join(tmpdir(), 'catalogo-test-pg-'));
    // mkdtemp makes the folder private; as root the server runs as `postgres`, which must enter it.
    await chmod(dataDir, 0o755);
    const cluster = await startEmbeddedPostgres({
      dataDir: join(dataDir, 'data'),
      persistent: false,
      log: (line) => console.log(`[tests] ${line}`),
    }).catch((err: unknown) => {
      // The reason in one line, not the test runner's stack trace of this file.
      if (!(err instanceof PostgresStartError)) throw err;
      process.stderr.write(`[tests] PostgreSQL could not start: ${err.message}\n`);
      process.exit(1);
    });
    adminUrl = cluster.url('postgres');
    stopCluster = async () => {
      await cluster.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
    console.log(`[tests] embedded PostgreSQL on port ${cluster.port}`);
  }

  const run = `${process.pid}_${Date.now().toString(36)}`;
  const templates = { products: `tpl_products_${run}`, inventory: `tpl_inventory_${run}` };
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const log = pino({ level: 'warn' });
  await admin.query(`CREATE DATABASE ${templates.products}`);
  await admin.query(`CREATE DATABASE ${templates.inventory}`);
  await migrate(withDatabase(adminUrl, templates.products), PRODUCTS_MIGRATIONS, log);
  await migrate(withDatabase(adminUrl, templates.inventory), INVENTORY_MIGRATIONS, log);
  await admin.end();

  project.provide('adminUrl', adminUrl);
  project.provide('templates', templates);

  return async () => {
    if (stopCluster) return stopCluster();
    const cleanup = new pg.Client({ connectionString: adminUrl });
    await cleanup.connect();
    const { rows } = await cleanup.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2`,
      [`tpl\\_%\\_${run}`, `t\\_%\\_${run}\\_%`],
    );
    for (const { datname } of rows) await cleanup.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    await cleanup.end();
  };
}
