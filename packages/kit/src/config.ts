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
}

export const DEV_API_KEY = 'dev-api-key';
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

  /** A secret with a development default that production must set explicitly. */
  secret(name: string, devDefault: string): string {
    const value = this.optional(name);
    if (value) return value;
    if (this.production) this.problems.push(`${name} es obligatoria en producción (NODE_ENV=production)`);
    return devDefault;
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
  const logLevel = reader.string('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel))
    reader.problems.push(`LOG_LEVEL debe ser uno de ${LOG_LEVELS.join(', ')}`);
  return {
    nodeEnv: reader.string('NODE_ENV', 'development'),
    port: reader.int('PORT', defaultPort, 0, 65535),
    host: reader.string('HOST', '0.0.0.0'),
    databaseUrl: reader.url('DATABASE_URL'),
    apiKeys: keys.length > 0 ? keys : [DEV_API_KEY],
    usingDevKey: keys.length === 0,
    logLevel,
  };
}
