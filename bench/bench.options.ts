import { parseArgs } from 'node:util';

export const SCENARIO_NAMES = [
  'product-read',
  'product-list',
  'purchase-spread',
  'purchase-hot',
  'checkout',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface BenchOptions {
  connections: number;
  /** Measured seconds per target and as many per floor, split over `rounds`. */
  duration: number;
  warmup: number;
  rounds: number;
  scenarios: ScenarioName[];
  productsDb: string | undefined;
  inventoryDb: string | undefined;
  logLevel: string;
  /** Both services' DATABASE_POOL_MAX; the purchase floor's pool has the same size. */
  poolMax: number;
  /** Both services' INSTANCES: node:cluster workers sharing each service's port. */
  instances: number;
  cpuProf: boolean;
  /** Both services trace every request and export the spans over OTLP to a sink in the bench. */
  tracing: boolean;
  /** The NATS the Inventory service's relay publishes to (`--nats`); undefined: events go to the log only. */
  natsUrl: string | undefined;
  /**
   * `--via-gateway`: each scenario's HTTP load goes through the gateway (target) and straight to the
   * service (floor), alternately, so the ratio is what the gateway leaves of the direct throughput.
   */
  viaGateway: boolean;
}

export const USAGE = `npm run bench -- [options]

  --connections N        concurrent connections (and floor workers), default 32
  --duration S           measured seconds per target and per floor, default 12
  --warmup S             warm-up seconds per target and per floor, default 2
  --rounds N             target and floor alternate N times (ABBA order), default 2
  --scenarios a,b        subset of ${SCENARIO_NAMES.join(', ')}
  --products-db URL      use this database (else PRODUCTS_DATABASE_URL, else embedded PostgreSQL)
  --inventory-db URL     use this database (else INVENTORY_DATABASE_URL, else embedded PostgreSQL)
  --log-level L          the services' LOG_LEVEL, default warn (info adds one log line per request)
  --pool-max N           the services' DATABASE_POOL_MAX and the purchase floor's pool size, default 10
  --instances N          both services' INSTANCES (cluster workers on one port), default 1
  --cpu-prof             write V8 CPU profiles of both services to bench/results/profiles/
  --tracing              both services trace every request (OpenTelemetry, OTLP to a sink in the bench)
  --nats                 the relay publishes to NATS JetStream at NATS_URL (default nats://127.0.0.1:4222),
                         into a stream of the run's own; adds the relay's drain rate to the report
  --via-gateway          each scenario through the gateway (target) against the same load sent
                         straight to the service (floor): the ratio is the gateway's cost
  --help
`;

export class UsageError extends Error {}

function positiveInt(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new UsageError(`--${name} must be an integer between 1 and ${max} (got '${raw}')`);
  }
  return value;
}

/** Parses the command line; environment variables supply the database URLs when no flag does. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      connections: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      scenarios: { type: 'string' },
      'products-db': { type: 'string' },
      'inventory-db': { type: 'string' },
      'log-level': { type: 'string' },
      'pool-max': { type: 'string' },
      instances: { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      tracing: { type: 'boolean' },
      nats: { type: 'boolean' },
      'via-gateway': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const scenarios = (values.scenarios ?? SCENARIO_NAMES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const name of scenarios) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`unknown scenario '${name}': choose from ${SCENARIO_NAMES.join(', ')}`);
    }
  }
  const productsDb = values['products-db'] ?? (env.PRODUCTS_DATABASE_URL?.trim() || undefined);
  const inventoryDb = values['inventory-db'] ?? (env.INVENTORY_DATABASE_URL?.trim() || undefined);
  if ((productsDb === undefined) !== (inventoryDb === undefined)) {
    throw new UsageError('give both databases (products and inventory) or neither');
  }
  const options: BenchOptions = {
    connections: positiveInt('connections', values.connections, 32, 1024),
    duration: positiveInt('duration', values.duration, 12, 3600),
    warmup: positiveInt('warmup', values.warmup, 2, 600),
    rounds: positiveInt('rounds', values.rounds, 2, 100),
    scenarios: SCENARIO_NAMES.filter((name) => scenarios.includes(name)),
    productsDb,
    inventoryDb,
    logLevel: values['log-level'] ?? 'warn',
    poolMax: positiveInt('pool-max', values['pool-max'], 10, 1000),
    instances: positiveInt('instances', values.instances, 1, 16),
    cpuProf: values['cpu-prof'] ?? false,
    tracing: values.tracing ?? false,
    natsUrl: values.nats ? env.NATS_URL?.trim() || 'nats://127.0.0.1:4222' : undefined,
    viaGateway: values['via-gateway'] ?? false,
  };
  if (options.scenarios.length === 0) throw new UsageError('--scenarios names no scenario');
  return options;
}
