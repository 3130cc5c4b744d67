/**
 * `npm run bench`: the whole system on a real PostgreSQL, loaded scenario by scenario with
 * autocannon on 127.0.0.1, each scenario beside a floor measured in the same run (see README.md).
 * Prints a Markdown table and writes bench/results/latest.{json,md}. Exits 1 when a purchase
 * scenario leaves the stock ledger unbalanced (an overselling benchmark is a failed benchmark).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createPool } from '@catalogo/kit/db';
import pino from 'pino';
import { CpuMeter } from './bench.cpu.js';
import { type BenchOptions, parseOptions, USAGE, UsageError } from './bench.options.js';
import { type OtlpSink, startOtlpSink } from './bench.otlp.js';
import { type Meta, toJson, toMarkdown } from './bench.report.js';
import { API_KEY, runScenario, type ScenarioResult } from './bench.scenarios.js';
import { seed } from './bench.seed.js';
import { type ChildServer, type Databases, openDatabases, RESULTS_DIR, startChild } from './bench.system.js';

const say = (line: string) => process.stdout.write(`[bench] ${line}\n`);

const cleanup: (() => Promise<void>)[] = [];
let stopping = false;

/** The reverse of start-up: pools and services first, PostgreSQL last. */
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const step of cleanup.reverse()) await step().catch(() => {});
}

function serviceEnv(options: BenchOptions, databaseUrl: string, otlp?: OtlpSink): Record<string, string> {
  return {
    // With tracing, the bench's own OTEL_* settings (a sampler, say) go to the services as well.
    ...(otlp
      ? {
          ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('OTEL_'))),
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        }
      : {}),
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: String(options.poolMax),
    API_KEYS: API_KEY,
    LOG_LEVEL: options.logLevel,
  };
}

async function main(): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  await mkdir(RESULTS_DIR, { recursive: true });
  const started = Date.now();

  const databases: Databases = await openDatabases({
    ...(options.productsDb ? { products: options.productsDb } : {}),
    ...(options.inventoryDb ? { inventory: options.inventoryDb } : {}),
  });
  cleanup.push(databases.stop);
  say(`databases: ${databases.description}`);

  const otlp = options.tracing ? await startOtlpSink() : undefined;
  if (otlp) cleanup.push(otlp.close);
  // One folder per service: Node writes one profile per thread, tsx's loader thread included.
  // Tracing loads before the service, as the services' start scripts load it.
  const profile = (name: string) => [
    ...(options.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(RESULTS_DIR, 'profiles', name)] : []),
    ...(otlp ? ['--import', '@catalogo/kit/tracing'] : []),
  ];
  const products: ChildServer = await startChild(
    'products',
    'services/products/src/server.ts',
    serviceEnv(options, databases.products, otlp),
    profile('products'),
  );
  cleanup.push(products.stop);
  // The Inventory service is only started when a purchase scenario needs it.
  const needsInventory = options.scenarios.some((name) => name.startsWith('purchase-'));
  const inventory: ChildServer | undefined = needsInventory
    ? await startChild(
        'inventory',
        'services/inventory/src/server.ts',
        {
          ...serviceEnv(options, databases.inventory, otlp),
          PRODUCTS_URL: products.url,
          PRODUCTS_API_KEY: API_KEY,
        },
        profile('inventory'),
      )
    : undefined;
  if (inventory) cleanup.push(inventory.stop);
  say(
    `services: products ${products.url}${inventory ? `, inventory ${inventory.url}` : ''} ` +
      `(LOG_LEVEL=${options.logLevel}, DATABASE_POOL_MAX=${options.poolMax})`,
  );

  const silent = pino({ level: 'silent' });
  const productsPool = createPool(
    { connectionString: databases.products, max: 2, applicationName: 'bench' },
    silent,
  );
  const inventoryPool = createPool(
    { connectionString: databases.inventory, max: 2, applicationName: 'bench' },
    silent,
  );
  cleanup.push(async () => void (await Promise.all([productsPool.end(), inventoryPool.end()])));
  const seeded = await seed(productsPool, inventory ? inventoryPool : undefined);
  const version = await productsPool.query<{ server_version: string }>('SHOW server_version');
  say(`seeded ${seeded.products.length} products with stock; ready in ${(Date.now() - started) / 1000} s`);

  const cpu = new CpuMeter();
  cpu.watch('bench', process.pid);
  cpu.watch('products', products.pid);
  cpu.watch('inventory', inventory?.pid);
  cpu.watch('postgres', databases.postmasterPid, true);

  const results: ScenarioResult[] = [];
  for (const name of options.scenarios) {
    say(`${name}: ${options.warmup} s warm-up per side, then ${options.duration} s per side`);
    const result = await runScenario(name, options, {
      productsUrl: products.url,
      inventoryUrl: inventory?.url,
      inventoryDb: databases.inventory,
      seed: seeded,
      inventoryPool,
      cpu,
    });
    results.push(result);
    say(
      `${name}: ${result.target.rps.toFixed(0)} rps vs floor ${result.floor.rps.toFixed(0)} rps ` +
        `(ratio ${(result.target.rps / result.floor.rps).toFixed(2)}), p99 ${result.target.p99.toFixed(1)} ms`,
    );
    for (const problem of result.problems) say(`${name}: LEDGER BROKEN: ${problem}`);
  }

  if (otlp) {
    const { requests, bytes } = otlp.received();
    say(
      `tracing: the services exported ${requests} batches of spans (${(bytes / 1e6).toFixed(1)} MB) over OTLP`,
    );
  }

  const meta: Meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model.trim() ?? 'unknown',
    connections: options.connections,
    duration_s: options.duration,
    warmup_s: options.warmup,
    rounds: options.rounds,
    log_level: options.logLevel,
    pool_max: options.poolMax,
    postgres: `PostgreSQL ${version.rows[0]!.server_version}, ${databases.description.split(' (')[0]}`,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])]
      .join(' ')
      // A database URL given on the command line may carry a password: the report does not.
      .replace(/\/\/([^:/@\s]+):[^@\s]*@/g, '//$1:***@'),
  };
  const markdown = toMarkdown(results, meta);
  await writeFile(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(toJson(results, meta), null, 2)}\n`);
  await writeFile(join(RESULTS_DIR, 'latest.md'), markdown);
  process.stdout.write(`\n${markdown}\n`);
  say(`wrote bench/results/latest.json and latest.md in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return results.some((r) => r.problems.length > 0) ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll().then(() => process.exit(130)));
}

main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`[bench] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await stopAll();
    process.exit(1);
  });
