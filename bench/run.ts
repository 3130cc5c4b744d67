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
import { startOtlpSink } from './bench.otlp.js';
import { type BenchStream, benchStream, type DrainResult, measureDrain, settle } from './bench.relay.js';
import { type Meta, type NatsCheck, toJson, toMarkdown } from './bench.report.js';
import { API_KEY, runScenario, type ScenarioResult } from './bench.scenarios.js';
import { seed } from './bench.seed.js';
import {
  type ChildServer,
  type Databases,
  gatewayEnv,
  openDatabases,
  RESULTS_DIR,
  serviceEnv,
  startChild,
} from './bench.system.js';

const say = (line: string) => process.stdout.write(`[bench] ${line}\n`);

const cleanup: (() => Promise<void>)[] = [];
let stopping = false;

/** The reverse of start-up: pools and services first, PostgreSQL last. */
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const step of cleanup.reverse()) await step().catch(() => {});
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
  // The gateway's /health, which it must pass to start, asks both services.
  const needsInventory =
    options.viaGateway ||
    options.scenarios.some((name) => name.startsWith('purchase-') || name === 'checkout');
  // With --nats, the relay publishes into a stream of the run's own, deleted at the end.
  let stream: BenchStream | undefined;
  if (options.natsUrl && needsInventory) {
    stream = await benchStream(options.natsUrl, `${process.pid.toString(36)}${Date.now().toString(36)}`);
    cleanup.push(stream.dispose);
    say(`NATS: ${options.natsUrl}, stream ${stream.name} (deleted at the end)`);
  }

  // One folder per service: Node writes one profile per thread, tsx's loader thread included.
  // Tracing loads before the service, as the services' start scripts load it.
  const profile = (name: string) => [
    ...(options.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(RESULTS_DIR, 'profiles', name)] : []),
    ...(otlp ? ['--import', '@catalogo/kit/tracing'] : []),
  ];
  const products: ChildServer = await startChild(
    'products',
    'services/products/src/server.ts',
    serviceEnv(options, databases.products, API_KEY, otlp?.url),
    profile('products'),
  );
  cleanup.push(products.stop);
  // The Inventory service is only started when a purchase scenario needs it.
  const inventory: ChildServer | undefined = needsInventory
    ? await startChild(
        'inventory',
        'services/inventory/src/server.ts',
        {
          ...serviceEnv(options, databases.inventory, API_KEY, otlp?.url),
          PRODUCTS_URL: products.url,
          PRODUCTS_API_KEY: API_KEY,
          ...(stream && options.natsUrl
            ? {
                NATS_URL: options.natsUrl,
                NATS_STREAM: stream.name,
                NATS_SUBJECT_PREFIX: stream.subjectPrefix,
              }
            : {}),
        },
        profile('inventory'),
      )
    : undefined;
  if (inventory) cleanup.push(inventory.stop);
  const gateway: ChildServer | undefined =
    options.viaGateway && inventory
      ? await startChild(
          'gateway',
          'services/gateway/src/server.ts',
          {
            ...gatewayEnv(options),
            PRODUCTS_URL: products.url,
            INVENTORY_URL: inventory.url,
          },
          profile('gateway'),
        )
      : undefined;
  if (gateway) cleanup.push(gateway.stop);
  say(
    `services: products ${products.url}${inventory ? `, inventory ${inventory.url}` : ''} ` +
      `(LOG_LEVEL=${options.logLevel}, DATABASE_POOL_MAX=${options.poolMax}, INSTANCES=${options.instances})` +
      (gateway ? `; gateway ${gateway.url} in front of them` : ''),
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

  // Outbox rows already delivered before the run (given databases) never reach the run's stream.
  const deliveredBefore = inventory
    ? Number(
        (await inventoryPool.query<{ n: string }>('SELECT count(published_at) AS n FROM outbox')).rows[0]!.n,
      )
    : 0;

  const cpu = new CpuMeter();
  cpu.watch('bench', process.pid);
  // With several instances the workers are the service process's children.
  cpu.watch('products', products.pid, options.instances > 1);
  cpu.watch('inventory', inventory?.pid, options.instances > 1);
  cpu.watch('gateway', gateway?.pid);
  cpu.watch('postgres', databases.postmasterPid, true);

  const results: ScenarioResult[] = [];
  for (const name of options.scenarios) {
    say(`${name}: ${options.warmup} s warm-up per side, then ${options.duration} s per side`);
    const result = await runScenario(name, options, {
      productsUrl: products.url,
      inventoryUrl: inventory?.url,
      gatewayUrl: gateway?.url,
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

  let drain: DrainResult | undefined;
  let natsCheck: NatsCheck | undefined;
  if (stream) {
    say('relay alone: 50 000 events written by SQL, timing their delivery');
    drain = await measureDrain(
      inventoryPool,
      seeded.products.map((p) => p.id),
      50_000,
    );
    say(`relay alone: ${drain.per_s.toFixed(0)} events/s (${drain.seconds.toFixed(1)} s)`);
    const left = await settle(inventoryPool, 60_000);
    const { rows } = await inventoryPool.query<{ n: string }>('SELECT count(*) AS n FROM outbox');
    natsCheck = { expected: Number(rows[0]!.n) - deliveredBefore, in_stream: await stream.messages(), left };
    say(
      `stream ${stream.name}: ${natsCheck.in_stream} messages for ${natsCheck.expected} events written` +
        (left > 0 ? `, ${left} still undelivered after 60 s` : ''),
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
    instances: options.instances,
    nats: options.natsUrl ?? null,
    via_gateway: options.viaGateway,
    postgres: `PostgreSQL ${version.rows[0]!.server_version}, ${databases.description.split(' (')[0]}`,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])]
      .join(' ')
      // A database URL given on the command line may carry a password: the report does not.
      .replace(/\/\/([^:/@\s]+):[^@\s]*@/g, '//$1:***@'),
  };
  const extra = { drain, nats: natsCheck };
  const markdown = toMarkdown(results, meta, extra);
  await writeFile(
    join(RESULTS_DIR, 'latest.json'),
    `${JSON.stringify(toJson(results, meta, extra), null, 2)}\n`,
  );
  await writeFile(join(RESULTS_DIR, 'latest.md'), markdown);
  process.stdout.write(`\n${markdown}\n`);
  say(`wrote bench/results/latest.json and latest.md in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const streamBroken = natsCheck !== undefined && natsCheck.in_stream !== natsCheck.expected;
  return results.some((r) => r.problems.length > 0) || streamBroken ? 1 : 0;
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
