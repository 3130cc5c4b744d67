/** Configuration shared by both services, read from the environment (docs/api.md §6). */
export interface BaseConfig {
  nodeEnv: string;
  port: number;
  host: string;
  databaseUrl: string;
  apiKeys: string[];
  /** True when no API_KEYS were given and the development key is in use (a warning is logged). */
  usingDevKey: boolean;
  logLevel: string;
  /** Processes serving the port together (node:cluster workers); 1 runs the service in this process. */
  instances: number;
  http: HttpLimits;
  /** How long a rendered `/metrics` text is served again (0: every scrape renders). */
  metricsCacheMs: number;
  /** Every request is answered within this time (503 + Retry-After past it). */
  requestTimeoutMs: number;
  database: DatabaseLimits;
}

/** How long the HTTP server waits for a client, and how many clients it holds at once. */
export interface HttpLimits {
  /** The whole request, headers and body, must arrive within this (else 408 and the socket closes). */
  requestTimeoutMs: number;
  /** The request's headers must arrive within this; at most `requestTimeoutMs`. */
  headersTimeoutMs: number;
  /** A connection on which nothing moves for this long is closed, even while a request is handled. */
  idleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Connections held at once; more are closed as soon as they are accepted. */
  maxConnections: number;
}

/** Bounds on the database work of a request: see createPool. */
export interface DatabaseLimits {
  connectionTimeoutMs: number;
  statementTimeoutMs: number;
  lockTimeoutMs: number;
}

export const DEV_API_KEY = 'dev-api-key';
/** Production refuses shorter keys: a key is a password, and a short one is guessed. */
export const MIN_PRODUCTION_KEY_LENGTH = 16;
/** Instances one process may run: beyond the cores of any one machine, more only contend. */
export const MAX_INSTANCES = 16;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Configuración inválida:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Collects every problem of a configuration before failing, so one start-up shows them all. */
export class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  get production(): boolean {
    return this.env.NODE_ENV === 'production';
  }

  string(name: string, fallback?: string): string {
    const value = this.env[name]?.trim();
    if (value) return value;
    if (fallback === undefined) {
      this.problems.push(`${name} es obligatoria`);
      return '';
    }
    return fallback;
  }

  optional(name: string): string | undefined {
    return this.env[name]?.trim() || undefined;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${name} debe ser un entero entre ${min} y ${max} (recibido '${raw}')`);
      return fallback;
    }
    return value;
  }

  url(name: string, fallback?: string): string {
    const value = this.string(name, fallback);
    if (value && !URL.canParse(value)) this.problems.push(`${name} no es una URL válida`);
    return value;
  }

  /** A secret with a development default that production must set explicitly, and set well. */
  secret(name: string, devDefault: string): string {
    const value = this.optional(name);
    if (value) {
      this.checkProductionKey(name, value);
      return value;
    }
    if (this.production) this.problems.push(`${name} es obligatoria en producción (NODE_ENV=production)`);
    return devDefault;
  }

  /**
   * In production an API key must not be the development key (it is published in the README) nor
   * shorter than MIN_PRODUCTION_KEY_LENGTH. The problem names the key by its place, never by its text.
   */
  checkProductionKey(name: string, key: string, place = ''): void {
    if (!this.production) return;
    if (key === DEV_API_KEY) {
      this.problems.push(
        `${name}${place} es la clave de desarrollo publicada '${DEV_API_KEY}': no se admite en producción`,
      );
    } else if (key.length < MIN_PRODUCTION_KEY_LENGTH) {
      this.problems.push(
        `${name}${place} tiene ${key.length} caracteres: en producción cada clave debe tener al menos ${MIN_PRODUCTION_KEY_LENGTH}`,
      );
    }
  }

  done(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

export function readBaseConfig(reader: EnvReader, defaultPort: number): BaseConfig {
  const keys = (reader.optional('API_KEYS') ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  if (keys.length === 0 && reader.production) {
    reader.problems.push('API_KEYS es obligatoria en producción (NODE_ENV=production)');
  }
  keys.forEach((key, index) => {
    reader.checkProductionKey('API_KEYS', key, keys.length > 1 ? ` (clave nº ${index + 1})` : '');
  });
  const logLevel = readLogLevel(reader);
  return {
    nodeEnv: reader.string('NODE_ENV', 'development'),
    port: reader.int('PORT', defaultPort, 0, 65535),
    host: reader.string('HOST', '0.0.0.0'),
    databaseUrl: reader.url('DATABASE_URL'),
    apiKeys: keys.length > 0 ? keys : [DEV_API_KEY],
    usingDevKey: keys.length === 0,
    logLevel,
    instances: reader.int('INSTANCES', 1, 1, MAX_INSTANCES),
    http: readHttpLimits(reader),
    metricsCacheMs: reader.int('METRICS_CACHE_MS', 1_000, 0, 60_000),
    requestTimeoutMs: reader.int('REQUEST_TIMEOUT_MS', 10_000, 100, 600_000),
    database: {
      connectionTimeoutMs: reader.int('DATABASE_POOL_TIMEOUT_MS', 2_000, 10, 600_000),
      statementTimeoutMs: reader.int('DATABASE_STATEMENT_TIMEOUT_MS', 5_000, 10, 600_000),
      lockTimeoutMs: reader.int('DATABASE_LOCK_TIMEOUT_MS', 1_000, 10, 600_000),
    },
  };
}

export function readLogLevel(reader: EnvReader): string {
  const logLevel = reader.string('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel))
    reader.problems.push(`LOG_LEVEL debe ser uno de ${LOG_LEVELS.join(', ')}`);
  return logLevel;
}

export function readHttpLimits(reader: EnvReader): HttpLimits {
  const limits = {
    requestTimeoutMs: reader.int('HTTP_REQUEST_TIMEOUT_MS', 10_000, 100, 600_000),
    headersTimeoutMs: reader.int('HTTP_HEADERS_TIMEOUT_MS', 5_000, 100, 600_000),
    idleTimeoutMs: reader.int('HTTP_IDLE_TIMEOUT_MS', 60_000, 100, 3_600_000),
    keepAliveTimeoutMs: reader.int('HTTP_KEEP_ALIVE_TIMEOUT_MS', 72_000, 100, 3_600_000),
    maxConnections: reader.int('HTTP_MAX_CONNECTIONS', 1_000, 1, 1_000_000),
  };
  // The headers are part of the request: Node refuses a headers deadline past the request's.
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    reader.problems.push('HTTP_HEADERS_TIMEOUT_MS no puede superar HTTP_REQUEST_TIMEOUT_MS');
  }
  return limits;
}
