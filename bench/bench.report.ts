import type { DrainResult } from './bench.relay.js';
import type { ScenarioResult } from './bench.scenarios.js';

export interface Meta {
  date: string;
  node: string;
  cpus: number;
  cpu_model: string;
  connections: number;
  duration_s: number;
  warmup_s: number;
  rounds: number;
  log_level: string;
  pool_max: number;
  instances: number;
  /** The NATS the relay published to (`--nats`), or null: the log only. */
  nats: string | null;
  /** `--via-gateway`: targets through the gateway, floors the same load sent to the service directly. */
  via_gateway: boolean;
  postgres: string;
  command: string;
}

/** With --nats: the run's stream against the events the service wrote. */
export interface NatsCheck {
  /** Events written during the run (and pending before it). */
  expected: number;
  in_stream: number;
  /** Events still undelivered when the stream was counted. */
  left: number;
}

export interface RelayReport {
  drain?: DrainResult | undefined;
  nats?: NatsCheck | undefined;
}

const round = (value: number, digits: number) =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : null;

const roundAll = (values: Record<string, number>) =>
  Object.fromEntries(Object.entries(values).map(([key, value]) => [key, round(value, 0)]));

export function toJson(results: ScenarioResult[], meta: Meta, relay: RelayReport = {}) {
  return {
    meta,
    ...(relay.drain
      ? {
          relay_drain: {
            events: relay.drain.events,
            seconds: round(relay.drain.seconds, 2),
            per_s: round(relay.drain.per_s, 0),
          },
        }
      : {}),
    ...(relay.nats
      ? { nats_stream: { ...relay.nats, exactly_once: relay.nats.in_stream === relay.nats.expected } }
      : {}),
    scenarios: results.map((r) => ({
      name: r.name,
      rps: round(r.target.rps, 1),
      p50_ms: round(r.target.p50, 2),
      p99_ms: round(r.target.p99, 2),
      non2xx: r.target.non2xx,
      errors: r.target.errors,
      statuses: r.target.statuses,
      floor_rps: round(r.floor.rps, 1),
      floor_p50_ms: round(r.floor.p50, 2),
      floor_p99_ms: round(r.floor.p99, 2),
      floor_non2xx: r.floor.non2xx,
      ratio: round(r.target.rps / r.floor.rps, 2),
      cpu_us_per_request: {
        target: roundAll(r.target.cpuPerRequest),
        floor: roundAll(r.floor.cpuPerRequest),
      },
      ...(r.sold !== undefined ? { sold_units: r.sold, ledger_ok: r.problems.length === 0 } : {}),
      ...(r.relay
        ? {
            relay: {
              written_per_s: round(r.relay.written_per_s, 0),
              delivered_per_s: round(r.relay.delivered_per_s, 0),
              max_backlog: r.relay.max_backlog,
              end_backlog: r.relay.end_backlog,
            },
          }
        : {}),
    })),
  };
}

const FLOORS: Record<string, string> = {
  'product-read': 'bare Fastify, same bytes',
  'product-list': 'bare Fastify, same bytes',
  'purchase-spread': 'same SQL via pg',
  'purchase-hot': 'same SQL via pg',
  checkout: 'same SQL via pg',
};

function relayLines(results: ScenarioResult[], meta: Meta, relay: RelayReport): string[] {
  const watched = results.filter((r) => r.relay);
  if (watched.length === 0) return [];
  const lines = [
    `Outbox relay (${meta.nats ? `to NATS JetStream at ${meta.nats}` : 'to the log only'}) during the targets' measured runs:`,
    '',
    '| scenario | purchases/s | events written/s | events delivered/s | max backlog | backlog at end |',
    '|---|--:|--:|--:|--:|--:|',
    ...watched.map(
      (r) =>
        `| ${r.name} | ${r.target.rps.toFixed(0)} | ${r.relay!.written_per_s.toFixed(0)} | ${r.relay!.delivered_per_s.toFixed(0)} | ${r.relay!.max_backlog} | ${r.relay!.end_backlog} |`,
    ),
    '',
  ];
  if (relay.drain) {
    const highest = Math.max(...watched.map((r) => r.relay!.written_per_s));
    lines.push(
      `Relay alone: ${relay.drain.events} events written by SQL, delivered in ${relay.drain.seconds.toFixed(1)} s: ` +
        `**${relay.drain.per_s.toFixed(0)} events/s**, ${(relay.drain.per_s / highest).toFixed(1)} × the highest rate ` +
        `the service wrote above (${highest.toFixed(0)} events/s).`,
      '',
    );
  }
  if (relay.nats) {
    lines.push(
      `JetStream: ${relay.nats.in_stream} messages in the run's stream for ${relay.nats.expected} events written` +
        (relay.nats.in_stream === relay.nats.expected ? ' (each once).' : ' — MISMATCH.') +
        (relay.nats.left > 0 ? ` ${relay.nats.left} events still undelivered after 60 s.` : ''),
      '',
    );
  }
  return lines;
}

export function toMarkdown(results: ScenarioResult[], meta: Meta, relay: RelayReport = {}): string {
  const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
  const lines = [
    '| scenario | rps | p50 ms | p99 ms | non-2xx | floor | floor rps | floor p50 ms | floor p99 ms | ratio |',
    '|---|--:|--:|--:|--:|---|--:|--:|--:|--:|',
    ...results.map((r) =>
      [
        r.name,
        fixed(r.target.rps, 0),
        fixed(r.target.p50, 2),
        fixed(r.target.p99, 2),
        r.target.errors > 0 ? `${r.target.non2xx} (+${r.target.errors} errors)` : String(r.target.non2xx),
        meta.via_gateway ? 'the service directly' : FLOORS[r.name],
        fixed(r.floor.rps, 0),
        fixed(r.floor.p50, 2),
        fixed(r.floor.p99, 2),
        fixed(r.target.rps / r.floor.rps, 2),
      ].join(' | '),
    ),
  ].map((line) => (line.startsWith('|') ? line : `| ${line} |`));
  const groups = ['bench', 'gateway', 'products', 'inventory', 'floor server', 'postgres'].filter((group) =>
    results.some((r) => group in r.target.cpuPerRequest || group in r.floor.cpuPerRequest),
  );
  const cpuRow = (name: string, side: string, perRequest: Record<string, number>) =>
    `| ${name} | ${side} | ${groups.map((g) => (g in perRequest ? perRequest[g]!.toFixed(0) : '–')).join(' | ')} | ${Object.values(
      perRequest,
    )
      .reduce((a, b) => a + b, 0)
      .toFixed(0)} |`;
  const cpuTable =
    groups.length === 0
      ? []
      : [
          'CPU time per response, µs (from /proc; `bench` is autocannon, or the pg driver of the purchase floors):',
          '',
          `| scenario | side | ${groups.join(' | ')} | total |`,
          `|---|---|${groups.map(() => '--:|').join('')}--:|`,
          ...results.flatMap((r) => [
            cpuRow(r.name, 'target', r.target.cpuPerRequest),
            cpuRow(r.name, 'floor', r.floor.cpuPerRequest),
          ]),
          '',
        ];
  const ledger = results
    .filter((r) => r.sold !== undefined)
    .map((r) => `${r.name}: ${r.problems.length === 0 ? 'balanced' : `${r.problems.length} problems`}`);
  return [
    `${meta.date} · Node ${meta.node} · ${meta.cpus} × ${meta.cpu_model} · ${meta.connections} connections · ` +
      `${meta.duration_s} s per side (${meta.rounds} rounds, ${meta.warmup_s} s warm-up) · ` +
      `LOG_LEVEL=${meta.log_level} · pool ${meta.pool_max} · ${meta.instances} instance(s) · ${meta.postgres}` +
      (meta.nats ? ` · NATS ${meta.nats}` : '') +
      (meta.via_gateway ? ' · target: through the gateway, floor: the same load sent to the service' : ''),
    '',
    ...lines,
    '',
    ...cpuTable,
    ...relayLines(results, meta, relay),
    ...(ledger.length > 0 ? [`Stock ledger after each purchase scenario: ${ledger.join('; ')}.`, ''] : []),
    `\`${meta.command}\``,
    '',
  ].join('\n');
}
