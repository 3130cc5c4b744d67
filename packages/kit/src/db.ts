import { PG_MIGRATE_LOCK_ID, runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from 'pino';
import { AppError } from './errors.js';

const TIMESTAMP_WITHOUT_TZ = 1114;
const TIMESTAMP_WITH_TZ = 1184;

/**
 * `TIMESTAMP` columns (the architecture document's type) hold UTC wall-clock time because every
 * session runs with `timezone=UTC`; they are read back as ISO 8601 UTC strings, the API's format.
 */
const toIso = (value: string) => new Date(`${value.replace(' ', 'T')}Z`).toISOString();
const toIsoWithZone = (value: string) => new Date(value).toISOString();

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TIMESTAMP_WITHOUT_TZ) return toIso;
    if (oid === TIMESTAMP_WITH_TZ) return toIsoWithZone;
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName: string;
}

export function createPool(options: PoolOptions, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    // A request waits at most this long for a connection, so an unreachable database becomes a
    // prompt 503 rather than a hung request.
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName,
    options: '-c timezone=UTC',
    types,
  });
  // An idle client whose server went away emits 'error'; unhandled, that would crash the process.
  pool.on('error', (err) =>
    // Only the cause: the error carries its client object, which would flood the log line.
    log.warn(
      { code: (err as { code?: string }).code, message: err.message },
      'idle database connection lost',
    ),
  );
  return pool;
}

export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** Runs `work` in one transaction on one connection; the caller owns nothing but the callback. */
export async function withTransaction<T>(pool: pg.Pool, work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  // The pool listens for a lost connection only while the client is idle. Checked out here, a
  // connection the server ends between two queries (a failover, an administrator) emits 'error'
  // with no listener, which would crash the process; the next query fails and the work rolls back.
  const lost = () => {
    broken = true;
  };
  client.on('error', lost);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
    throw err;
  } finally {
    client.off('error', lost);
    // A connection whose ROLLBACK failed, or that was lost, is in an unknown state: destroy it.
    client.release(broken);
  }
}

/**
 * Applies the service's SQL migrations. node-pg-migrate only *tries* its advisory lock and fails
 * when another instance holds it, so we wait for that same lock on our own session instead: several
 * instances starting at once apply each migration exactly once, and none of them fails to start.
 */
export async function migrate(databaseUrl: string, dir: string, log: Logger): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [String(PG_MIGRATE_LOCK_ID)]);
    const applied = await runner({
      dbClient: client,
      noLock: true,
      dir,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      count: Number.POSITIVE_INFINITY,
      singleTransaction: true,
      checkOrder: true,
      logger: {
        debug: () => {},
        info: (msg: string) => log.debug(msg),
        warn: (msg: string) => log.warn(msg),
        error: (msg: string) => log.error(msg),
      },
    });
    if (applied.length > 0) log.info({ migrations: applied.map((m) => m.name) }, 'migrations applied');
  } finally {
    // Ending the session releases the lock.
    await client.end();
  }
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovering)
  '53300', // too_many_connections
]);

const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection is closed',
];

/** True for failures that mean "the database cannot be reached now", not "this query is wrong". */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  if (err instanceof AggregateError) return err.errors.some(isDatabaseUnavailable);
  return UNAVAILABLE_MESSAGES.some((m) => err.message.includes(m));
}

/** Database errors that a request caused (bad text or numbers that slipped past the schema). */
export function databaseInputProblem(err: unknown): AppError | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === '22021' || code === '22P05') {
    return new AppError(400, 'invalid_characters', { detail: 'El texto contiene caracteres no admitidos' });
  }
  if (code === '22003') {
    return new AppError(400, 'out_of_range', { detail: 'Un valor numérico está fuera del rango admitido' });
  }
  return undefined;
}
