/**
 * `npm run soak -- --minutes M`: the whole system (embedded PostgreSQL, both services, the relay
 * publishing to NATS JetStream) under a steady mixed load for M minutes, sampled every 10 s; then
 * the books, the events and the memory are checked. Loopback only, bounded in time. See README.md.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createPool } from '@catalogo/kit/db';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type pg from 'pg';
import pino from 'pino';
import { family } from './bench.cpu.js';
import { type BenchStream, benchStream, settle } from './bench.relay.js';
import { INITIAL_STOCK, seed } from './bench.seed.js';
import { type ChildServer, openDatabases, RESULTS_DIR, serviceEnv, startChild } from './bench.system.js';
import { type Interval, MIX, SoakLoad } from './soak.load.js';
import { type Sample, samplesTable, soakPlot } from './soak.report.js';

// The services run as in production, where a key must have at least 16 characters.
const API_KEY = 'catalogo-soak-key';
const SAMPLE_S = 10;
/** The memory criterion: the median RSS of the last third of the samples at most this much above the second third's. */
const RSS_GROWTH_LIMIT = 0.1;

const USAGE = `npm run soak -- [options]

  --minutes M        how long the load lasts, default 10
  --rate R           requests per second, steady, default 300
  --connections N    the most requests in flight at once, default 64
  --warmup S         seconds of the same load first, neither sampled nor judged, default 30
  --log-level L      the services' LOG_LEVEL, default warn
  --help

NATS_URL (default nats://127.0.0.1:4222) is the NATS the relay publishes to, into a stream of the
run's own that is deleted at the end. Results: bench/results/soak.{json,md,svg}.
`;

const say = (line: string) => process.stdout.write(`[soak] ${line}\n`);
const cleanup: (() => Promise<void>)[] = [];

function options() {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      connections: { type: 'string' },
      'log-level': { type: 'string' },
      warmup: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const positive = (name: string, raw: string | undefined, fallback: number) => {
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
    return value;
  };
  return {
    help: values.help ?? false,
    minutes: positive('minutes', values.minutes, 10),
    warmup: values.warmup === '0' ? 0 : positive('warmup', values.warmup, 30),
    rate: positive('rate', values.rate, 300),
    connections: positive('connections', values.connections, 64),
    logLevel: values['log-level'] ?? 'warn',
    natsUrl: process.env.NATS_URL?.trim() || 'nats://127.0.0.1:4222',
  };
}

/** Resident memory of `pid` (and its descendants), in MB, from /proc. */
function rssMb(pid: number | undefined, descendants = false): number {
  if (pid === undefined) return Number.NaN;
  let kb = 0;
  for (const member of descendants ? family(pid) : [pid]) {
    try {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${member}/status`, 'utf8'));
      kb += Number(match?.[1] ?? 0);
    } catch {
      // Exited meanwhile.
    }
  }
  return kb / 1024;
}

/** The services' /metrics, as name{labels} → value (sums over labels under the bare name). */
async function scrape(url: string): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    for (const line of text.split('\n')) {
      const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+|NaN)$/.exec(line);
      if (!match) continue;
      const name = match[1]!;
      values.set(name, (values.get(name) ?? 0) + Number(match[3]));
    }
  } catch {
    // A scrape that fails leaves the sample's figures empty (NaN).
  }
  return values;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const median = (values: number[]) => percentile(values, 50);

interface Backlog {
  pending: number;
  age: number;
}

async function backlogNow(pool: pg.Pool): Promise<Backlog> {
  const { rows } = await pool.query<{ pending: number; age: number }>(
    `SELECT count(*)::int AS pending,
            COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(occurred_at)), 0)::float8 AS age
     FROM outbox WHERE published_at IS NULL`,
  );
  return rows[0]!;
}

async function eventsWritten(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT COALESCE(max(seq), 0) AS n FROM outbox');
  return Number(rows[0]!.n);
}

/** Every message of the stream: how many, how many distinct ids, and the purchases it announces. */
async function readStream(url: string, stream: string, expected: number) {
  const nc = await connect({ servers: url });
  try {
    const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: DeliverPolicy.All });
    const ids = new Set<string>();
    const purchases = new Map<string, number>();
    let messages = 0;
    if (expected > 0) {
      const iterator = await consumer.consume({ max_messages: 1_000 });
      let last = Date.now();
      // A stream that holds fewer messages than expected must not hang the check.
      const idle = setInterval(() => {
        if (Date.now() - last > 10_000) iterator.stop();
      }, 1_000);
      for await (const m of iterator) {
        last = Date.now();
        messages += 1;
        const event = m.json<{ id: string; type: string; data: { purchase_id?: string } }>();
        ids.add(event.id);
        if (event.type === 'purchase.completed') {
          const id = String(event.data.purchase_id);
          purchases.set(id, (purchases.get(id) ?? 0) + 1);
        }
        if (messages >= expected) break;
      }
      clearInterval(idle);
    }
    return { messages, distinct: ids.size, purchases };
  } finally {
    await nc.close();
  }
}

async function main(): Promise<number> {
  const opts = options();
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  await mkdir(RESULTS_DIR, { recursive: true });
  const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  const stream: BenchStream = await benchStream(opts.natsUrl, runId);
  cleanup.push(stream.dispose);
  const databases = await openDatabases({});
  cleanup.push(databases.stop);
  const env = { poolMax: 10, logLevel: opts.logLevel };
  const products: ChildServer = await startChild(
    'soak-products',
    'services/products/src/server.ts',
    serviceEnv(env, databases.products, API_KEY),
  );
  cleanup.push(products.stop);
  const inventory: ChildServer = await startChild('soak-inventory', 'services/inventory/src/server.ts', {
    ...serviceEnv(env, databases.inventory, API_KEY),
    PRODUCTS_URL: products.url,
    PRODUCTS_API_KEY: API_KEY,
    NATS_URL: opts.natsUrl,
    NATS_STREAM: stream.name,
    NATS_SUBJECT_PREFIX: stream.subjectPrefix,
  });
  cleanup.push(inventory.stop);
  const silent = pino({ level: 'silent' });
  const productsPool = createPool(
    { connectionString: databases.products, max: 2, applicationName: 'soak' },
    silent,
  );
  const inventoryPool = createPool(
    { connectionString: databases.inventory, max: 2, applicationName: 'soak' },
    silent,
  );
  cleanup.push(async () => void (await Promise.all([productsPool.end(), inventoryPool.end()])));
  const seeded = await seed(productsPool, inventoryPool);
  const productIds = seeded.products.map((p) => p.id);
  say(
    `system up: products ${products.url}, inventory ${inventory.url}, ${databases.description}, ` +
      `NATS ${opts.natsUrl} stream ${stream.name}; ${productIds.length} products of ${INITIAL_STOCK} units`,
  );
  say(
    `load: ${opts.rate} requests/s for ${opts.minutes} min, at most ${opts.connections} in flight; mix ` +
      MIX.map(([kind, share]) => `${kind} ${share}%`).join(', '),
  );

  const load = new SoakLoad(
    { productsUrl: products.url, inventoryUrl: inventory.url, apiKey: API_KEY, productIds },
    opts.connections,
  );
  cleanup.push(async () => load.close());
  // Compiling, filling caches and pools: the same load, counted in the books and the events checked
  // at the end, but neither sampled nor held to the backlog and memory criteria.
  if (opts.warmup > 0) {
    say(`warm-up: ${opts.warmup} s`);
    await load.run(opts.rate, opts.warmup, opts.connections);
    load.takeInterval();
  }
  const samples: Sample[] = [];
  const seconds = opts.minutes * 60;
  let running = true;
  // The backlog every second: its largest value and oldest event's age within each interval.
  let backlogPeak: Backlog = { pending: 0, age: 0 };
  const watcher = (async () => {
    while (running) {
      const now = await backlogNow(inventoryPool).catch(() => undefined);
      if (now)
        backlogPeak = {
          pending: Math.max(backlogPeak.pending, now.pending),
          age: Math.max(backlogPeak.age, now.age),
        };
      await sleep(1_000);
    }
  })();
  const started = performance.now();
  let previous = {
    at: started,
    written: await eventsWritten(inventoryPool),
    delivered: (await scrape(inventory.url)).get('outbox_published_total') ?? 0,
  };
  const sampler = (async () => {
    for (let next = SAMPLE_S; running; next += SAMPLE_S) {
      const wait = started + next * 1000 - performance.now();
      if (wait > 0) await sleep(wait);
      if (!running) break;
      const interval: Interval = load.takeInterval();
      const [pm, im] = await Promise.all([scrape(products.url), scrape(inventory.url)]);
      const at = performance.now();
      const written = await eventsWritten(inventoryPool);
      const delivered = im.get('outbox_published_total') ?? Number.NaN;
      const span = (at - previous.at) / 1000;
      const peak = backlogPeak;
      backlogPeak = { pending: 0, age: 0 };
      const sample: Sample = {
        t: (at - started) / 1000,
        rps: interval.latencies.length / span,
        purchases_per_s: interval.purchases / span,
        p50_ms: percentile(interval.latencies, 50),
        p99_ms: percentile(interval.latencies, 99),
        status_5xx: interval.count5xx(),
        errors: interval.errors,
        behind: interval.behind,
        rss_mb: {
          products: rssMb(products.pid),
          inventory: rssMb(inventory.pid),
          postgres: rssMb(databases.postmasterPid, true),
        },
        heap_mb: {
          products: (pm.get('nodejs_heap_size_used_bytes') ?? Number.NaN) / 2 ** 20,
          inventory: (im.get('nodejs_heap_size_used_bytes') ?? Number.NaN) / 2 ** 20,
        },
        backlog_max: peak.pending,
        backlog_age_max_s: peak.age,
        events_written_per_s: (written - previous.written) / span,
        events_delivered_per_s: (delivered - previous.delivered) / span,
        pool_waiting: {
          products: pm.get('db_pool_waiting_requests') ?? Number.NaN,
          inventory: im.get('db_pool_waiting_requests') ?? Number.NaN,
        },
      };
      previous = { at, written, delivered };
      samples.push(sample);
      say(
        `${sample.t.toFixed(0)} s: ${sample.rps.toFixed(0)} req/s, p50 ${sample.p50_ms.toFixed(1)} ms, ` +
          `p99 ${sample.p99_ms.toFixed(1)} ms, 5xx ${sample.status_5xx}, RSS ${sample.rss_mb.products.toFixed(0)}/` +
          `${sample.rss_mb.inventory.toFixed(0)} MB, backlog ≤ ${sample.backlog_max} (oldest ≤ ` +
          `${sample.backlog_age_max_s.toFixed(2)} s), delivered ${sample.events_delivered_per_s.toFixed(0)}/s`,
      );
    }
  })();
  await load.run(opts.rate, seconds, opts.connections);
  running = false;
  await sampler;
  await watcher;
  const loadSeconds = (performance.now() - started) / 1000;

  say('load over: waiting for the relay to deliver the rest, then checking');
  const left = await settle(inventoryPool, 60_000);
  const problems: string[] = [];
  if (left > 0) problems.push(`${left} events still undelivered 60 s after the load`);

  // The books: per product, stock + units sold = initial stock + the adjustments answered 201.
  const { rows: books } = await inventoryPool.query<{ producto_id: number; cantidad: number; sold: string }>(
    `SELECT i.producto_id, i.cantidad, COALESCE(sum(h.cantidad), 0) AS sold
     FROM inventario i LEFT JOIN historial_compras h ON h.producto_id = i.producto_id AND h.id > $2
     WHERE i.producto_id = ANY($1::int[]) GROUP BY i.producto_id, i.cantidad`,
    [productIds, seeded.historyMark],
  );
  let sold = 0;
  let unbalanced = 0;
  for (const row of books) {
    sold += Number(row.sold);
    const adjusted = load.ledger.adjusted.get(row.producto_id) ?? 0;
    if (row.cantidad + Number(row.sold) !== INITIAL_STOCK + adjusted || row.cantidad < 0) unbalanced += 1;
  }
  const booksExact = unbalanced === 0 && books.length === productIds.length;
  if (load.ledger.unknownOutcomes === 0) {
    if (!booksExact)
      problems.push(`books: ${unbalanced} products where stock + sold ≠ initial + adjustments`);
    if (sold !== load.ledger.bought)
      problems.push(`books: ${sold} units sold in the database, ${load.ledger.bought} answered 201`);
  } else if (!booksExact) {
    problems.push(
      `books: ${unbalanced} products unbalanced, with ${load.ledger.unknownOutcomes} stock changes of unknown outcome`,
    );
  }
  if (load.ledger.badReplays > 0)
    problems.push(`${load.ledger.badReplays} keyed retries not replayed byte for byte`);
  for (const [what, count] of load.ledger.unexpected) problems.push(`${count} × unexpected answer: ${what}`);

  // The events: every purchase announced once in JetStream, and one message per outbox event.
  const { rows: outbox } = await inventoryPool.query<{ n: string }>('SELECT count(*) AS n FROM outbox');
  const { rows: purchaseRows } = await inventoryPool.query<{ id: string }>(
    'SELECT id::text AS id FROM historial_compras WHERE id > $1',
    [seeded.historyMark],
  );
  const expectedEvents = Number(outbox[0]!.n);
  const read = await readStream(opts.natsUrl, stream.name, expectedEvents);
  const missing = purchaseRows.filter((r) => read.purchases.get(r.id) !== 1).length;
  if (read.messages !== expectedEvents || read.distinct !== expectedEvents) {
    problems.push(
      `JetStream: ${read.messages} messages (${read.distinct} distinct) for ${expectedEvents} events`,
    );
  }
  if (missing > 0 || read.purchases.size !== purchaseRows.length) {
    problems.push(`JetStream: ${missing} of ${purchaseRows.length} purchases not announced exactly once`);
  }

  // Memory: the median RSS of the last third of the samples against the second third's.
  const third = Math.floor(samples.length / 3);
  const memory = (['products', 'inventory'] as const).map((service) => {
    const second = median(samples.slice(third, 2 * third).map((s) => s.rss_mb[service]));
    const last = median(samples.slice(2 * third).map((s) => s.rss_mb[service]));
    const heapSecond = median(samples.slice(third, 2 * third).map((s) => s.heap_mb[service]));
    const heapLast = median(samples.slice(2 * third).map((s) => s.heap_mb[service]));
    return {
      service,
      rss_second_third_mb: second,
      rss_last_third_mb: last,
      rss_growth: last / second - 1,
      heap_second_third_mb: heapSecond,
      heap_last_third_mb: heapLast,
    };
  });
  if (third === 0) problems.push('too short to judge memory (fewer than 3 samples)');
  for (const m of memory) {
    if (m.rss_growth > RSS_GROWTH_LIMIT)
      problems.push(
        `${m.service}: RSS grew ${(m.rss_growth * 100).toFixed(1)} % (limit ${RSS_GROWTH_LIMIT * 100} %)`,
      );
  }

  const requests = samples.reduce((n, s) => n + s.rps * SAMPLE_S, 0);
  const total5xx = samples.reduce((n, s) => n + s.status_5xx, 0);
  if (total5xx > 0) problems.push(`${total5xx} answers 5xx`);
  const backlogAgeMax = Math.max(0, ...samples.map((s) => s.backlog_age_max_s));
  const productionPeak = Math.max(...samples.map((s) => s.events_written_per_s));
  const backlogMax = Math.max(0, ...samples.map((s) => s.backlog_max));
  const backlogSeconds = Math.max(
    0,
    ...samples.map((s) => (s.events_written_per_s > 0 ? s.backlog_max / s.events_written_per_s : 0)),
  );
  if (backlogSeconds > 1) problems.push(`backlog reached ${backlogSeconds.toFixed(2)} s of production`);

  const summary = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown'}`,
    minutes: opts.minutes,
    warmup_s: opts.warmup,
    rate_requested: opts.rate,
    rate_achieved: requests / loadSeconds,
    requests_behind: samples.reduce((n, s) => n + s.behind, 0),
    mix: Object.fromEntries(MIX),
    log_level: opts.logLevel,
    nats: opts.natsUrl,
    p50_ms_median: median(samples.map((s) => s.p50_ms)),
    p99_ms_max: Math.max(...samples.map((s) => s.p99_ms)),
    answers_5xx: total5xx,
    books_exact: booksExact,
    units_sold: sold,
    stock_changes_unknown: load.ledger.unknownOutcomes,
    purchases: purchaseRows.length,
    events: expectedEvents,
    stream_messages: read.messages,
    events_once: read.messages === expectedEvents && read.distinct === expectedEvents && missing === 0,
    backlog_max: backlogMax,
    backlog_max_seconds_of_production: backlogSeconds,
    backlog_oldest_event_max_s: backlogAgeMax,
    events_written_peak_per_s: productionPeak,
    memory_criterion: `median RSS of the last third of the samples ≤ ${(1 + RSS_GROWTH_LIMIT).toFixed(2)} × the second third's`,
    memory,
    problems,
  };
  const verdict = problems.length === 0 ? 'PASSED' : `FAILED (${problems.length} problems)`;
  const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const markdown = [
    `Soak ${summary.date} · ${opts.minutes} min after a ${opts.warmup}-s warm-up · Node ${summary.node} · ${summary.cpus} · LOG_LEVEL=${opts.logLevel} · NATS ${opts.natsUrl}`,
    '',
    `**${verdict}.** Steady load ${fmt(summary.rate_achieved)} requests/s achieved of ${opts.rate} asked ` +
      `(${summary.requests_behind} requests not sent for want of a free connection); ${summary.purchases} purchases, ` +
      `${summary.units_sold} units; ${total5xx} answers 5xx; books ${booksExact ? 'exact' : 'NOT exact'}; ` +
      `${read.messages} messages in JetStream for ${expectedEvents} events, ${summary.events_once ? 'each once' : 'NOT each once'}; ` +
      `backlog at most ${backlogMax} events (${backlogSeconds.toFixed(2)} s of production), oldest waiting event at most ` +
      `${backlogAgeMax.toFixed(2)} s.`,
    '',
    `Memory (${summary.memory_criterion}): ` +
      memory
        .map(
          (m) =>
            `${m.service} RSS ${fmt(m.rss_second_third_mb)} → ${fmt(m.rss_last_third_mb)} MB (${fmt(m.rss_growth * 100, 1)} %), ` +
            `heap used ${fmt(m.heap_second_third_mb)} → ${fmt(m.heap_last_third_mb)} MB`,
        )
        .join('; ') +
      '.',
    '',
    ...(problems.length > 0 ? ['Problems:', '', ...problems.map((p) => `- ${p}`), ''] : []),
    ...samplesTable(samples),
    '',
    `\`npm run soak -- --minutes ${opts.minutes} --rate ${opts.rate} --warmup ${opts.warmup}\``,
    '',
  ].join('\n');
  await writeFile(join(RESULTS_DIR, 'soak.json'), `${JSON.stringify({ ...summary, samples }, null, 2)}\n`);
  await writeFile(join(RESULTS_DIR, 'soak.md'), markdown);
  await writeFile(
    join(RESULTS_DIR, 'soak.svg'),
    soakPlot(
      `Soak ${summary.date.slice(0, 16)}Z, ${opts.minutes} min at ${fmt(summary.rate_achieved)} req/s`,
      samples,
    ),
  );
  process.stdout.write(`\n${markdown}\n`);
  say(`${verdict}; wrote bench/results/soak.json, soak.md and soak.svg`);
  return problems.length === 0 ? 0 : 1;
}

let stopping = false;
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const step of cleanup.reverse()) await step().catch(() => {});
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
    process.stderr.write(`[soak] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await stopAll();
    process.exit(1);
  });
