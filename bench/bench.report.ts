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
  postgres: string;
  command: string;
}

const round = (value: number, digits: number) =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : null;

const roundAll = (values: Record<string, number>) =>
  Object.fromEntries(Object.entries(values).map(([key, value]) => [key, round(value, 0)]));

export function toJson(results: ScenarioResult[], meta: Meta) {
  return {
    meta,
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

export function toMarkdown(results: ScenarioResult[], meta: Meta): string {
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
        FLOORS[r.name],
        fixed(r.floor.rps, 0),
        fixed(r.floor.p50, 2),
        fixed(r.floor.p99, 2),
        fixed(r.target.rps / r.floor.rps, 2),
      ].join(' | '),
    ),
  ].map((line) => (line.startsWith('|') ? line : `| ${line} |`));
  const groups = ['bench', 'products', 'inventory', 'floor server', 'postgres'].filter((group) =>
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
      `LOG_LEVEL=${meta.log_level} · pool ${meta.pool_max} · ${meta.postgres}`,
    '',
    ...lines,
    '',
    ...cpuTable,
    ...(ledger.length > 0 ? [`Stock ledger after each purchase scenario: ${ledger.join('; ')}.`, ''] : []),
    `\`${meta.command}\``,
    '',
  ].join('\n');
}
