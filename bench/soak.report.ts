/**
 * The soak's outputs: the samples as a Markdown table and as an SVG plot (a few stacked line charts
 * drawn here: a dependency for four polylines would weigh more than they do).
 */

export interface Sample {
  /** Seconds since the load started, at the end of the interval. */
  t: number;
  rps: number;
  purchases_per_s: number;
  p50_ms: number;
  p99_ms: number;
  status_5xx: number;
  errors: number;
  /** Requests due that the driver could not send: the system was behind the steady rate. */
  behind: number;
  rss_mb: { products: number; inventory: number; postgres: number };
  heap_mb: { products: number; inventory: number };
  /** The largest backlog seen by the 1-second watcher during the interval, and its oldest event's age. */
  backlog_max: number;
  backlog_age_max_s: number;
  events_written_per_s: number;
  events_delivered_per_s: number;
  pool_waiting: { products: number; inventory: number };
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

export function samplesTable(samples: Sample[]): string[] {
  return [
    '| t (s) | req/s | purchases/s | p50 ms | p99 ms | 5xx | behind | RSS MB products / inventory / postgres | heap MB products / inventory | backlog max | oldest event max (s) | events written/s | delivered/s | pool waiting P / I |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...samples.map((s) =>
      [
        '',
        s.t.toFixed(0),
        fixed(s.rps, 0),
        fixed(s.purchases_per_s, 0),
        fixed(s.p50_ms, 1),
        fixed(s.p99_ms, 1),
        s.status_5xx + (s.errors > 0 ? ` (+${s.errors} errors)` : ''),
        s.behind,
        `${fixed(s.rss_mb.products, 0)} / ${fixed(s.rss_mb.inventory, 0)} / ${fixed(s.rss_mb.postgres, 0)}`,
        `${fixed(s.heap_mb.products, 0)} / ${fixed(s.heap_mb.inventory, 0)}`,
        s.backlog_max,
        fixed(s.backlog_age_max_s, 2),
        fixed(s.events_written_per_s, 0),
        fixed(s.events_delivered_per_s, 0),
        `${s.pool_waiting.products} / ${s.pool_waiting.inventory}`,
        '',
      ]
        .join(' | ')
        .trim(),
    ),
  ];
}

interface Series {
  name: string;
  color: string;
  values: number[];
}

interface Panel {
  title: string;
  series: Series[];
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Stacked line charts sharing one time axis (minutes). */
export function plotSvg(title: string, times: number[], panels: Panel[]): string {
  const width = 900;
  const panelHeight = 170;
  const left = 60;
  const right = 20;
  const top = 40;
  const gap = 45;
  const plotWidth = width - left - right;
  const height = top + panels.length * (panelHeight + gap);
  const tMax = Math.max(1, ...times);
  const x = (t: number) => left + (t / tMax) * plotWidth;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  panels.forEach((panel, index) => {
    const y0 = top + index * (panelHeight + gap) + 15;
    const yMaxRaw = Math.max(0, ...panel.series.flatMap((s) => s.values.filter(Number.isFinite)));
    const yMax = yMaxRaw > 0 ? yMaxRaw * 1.1 : 1;
    const y = (v: number) => y0 + panelHeight - (v / yMax) * panelHeight;
    parts.push(`<text x="${left}" y="${y0 - 5}" font-weight="bold">${escapeXml(panel.title)}</text>`);
    parts.push(
      `<rect x="${left}" y="${y0}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#999"/>`,
    );
    for (let tick = 0; tick <= 4; tick += 1) {
      const value = (yMax * tick) / 4;
      const ty = y(value);
      parts.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${ty}" y2="${ty}" stroke="#eee"/>`);
      parts.push(
        `<text x="${left - 5}" y="${ty + 4}" text-anchor="end">${value >= 100 ? value.toFixed(0) : value.toPrecision(2)}</text>`,
      );
    }
    for (let minute = 0; minute <= tMax / 60; minute += Math.max(1, Math.ceil(tMax / 60 / 10))) {
      const tx = x(minute * 60);
      parts.push(`<text x="${tx}" y="${y0 + panelHeight + 14}" text-anchor="middle">${minute} min</text>`);
    }
    panel.series.forEach((series, seriesIndex) => {
      const points = series.values
        .map((v, i) => (Number.isFinite(v) ? `${x(times[i]!).toFixed(1)},${y(v).toFixed(1)}` : ''))
        .filter(Boolean)
        .join(' ');
      parts.push(`<polyline fill="none" stroke="${series.color}" stroke-width="1.5" points="${points}"/>`);
      const lx = left + plotWidth - 180 * (panel.series.length - seriesIndex);
      parts.push(`<rect x="${lx}" y="${y0 - 14}" width="10" height="3" fill="${series.color}"/>`);
      parts.push(`<text x="${lx + 14}" y="${y0 - 9}">${escapeXml(series.name)}</text>`);
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export function soakPlot(title: string, samples: Sample[]): string {
  const times = samples.map((s) => s.t);
  const series = (name: string, color: string, pick: (s: Sample) => number): Series => ({
    name,
    color,
    values: samples.map(pick),
  });
  return plotSvg(title, times, [
    {
      title: 'Throughput (per second)',
      series: [
        series('requests', '#1f77b4', (s) => s.rps),
        series('purchases', '#ff7f0e', (s) => s.purchases_per_s),
      ],
    },
    {
      title: 'Latency (ms)',
      series: [series('p50', '#2ca02c', (s) => s.p50_ms), series('p99', '#d62728', (s) => s.p99_ms)],
    },
    {
      title: 'Memory (MB)',
      series: [
        series('RSS products', '#9467bd', (s) => s.rss_mb.products),
        series('RSS inventory', '#8c564b', (s) => s.rss_mb.inventory),
        series('heap inventory', '#e377c2', (s) => s.heap_mb.inventory),
      ],
    },
    {
      title: 'Events: backlog (max per interval) and delivered per second',
      series: [
        series('backlog', '#7f7f7f', (s) => s.backlog_max),
        series('delivered/s', '#17becf', (s) => s.events_delivered_per_s),
      ],
    },
  ]);
}
