/**
 * The Grafana dashboard's queries, each run against a real Prometheus that has scraped both
 * services while they served a little traffic (purchases, a refused one, a 404, reads): every panel
 * must return data, so a renamed metric or label shows here rather than as an empty panel in
 * production. The same Prometheus evaluates the alert rules on those series, which must all be
 * healthy. Prometheus is Debian's `prometheus` package (CI installs it); without the binary these
 * tests are skipped, never failed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '@catalogo/kit/app';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  buildInventory,
  closedPort,
  createProductIn,
  headers,
  orderBody,
  purchaseBody,
  reservationBody,
  setStockIn,
  startProducts,
} from '../../services/inventory/test/helpers.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'deploy', 'observability');
const SCRAPE_SECONDS = 1;

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
}
const dashboard = JSON.parse(await readFile(join(DIR, 'grafana', 'dashboards', 'catalogo.json'), 'utf8')) as {
  panels: Panel[];
  templating: { list: { name: string; allValue?: string }[] };
};
const queries = dashboard.panels.flatMap((panel) =>
  (panel.targets ?? []).map((target) => ({ name: `${panel.title} (${target.refId})`, expr: target.expr })),
);

/**
 * What Grafana would send with the variables at their defaults: every instance, and a rate window
 * of several scrapes (Grafana's $__rate_interval is at least four scrape intervals).
 */
function substitute(expr: string): string {
  let result = expr.replaceAll('$__rate_interval', `${10 * SCRAPE_SECONDS}s`);
  for (const variable of dashboard.templating.list) {
    result = result.replaceAll(`$${variable.name}`, variable.allValue ?? '.*');
  }
  expect(result, 'every variable of the query is substituted').not.toMatch(/\$\w/);
  return result;
}

describe('the dashboard as provisioned', () => {
  it('names the provisioned Prometheus data source in every panel and query', async () => {
    const provisioned = parse(
      await readFile(join(DIR, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'),
    ) as { datasources: { uid: string; type: string }[] };
    const [source] = provisioned.datasources;
    expect(source?.type).toBe('prometheus');
    const named = JSON.stringify(dashboard).match(/"datasource":\{[^}]*\}/g) ?? [];
    expect(named.length).toBeGreaterThan(queries.length);
    for (const reference of named)
      expect(reference).toBe(`"datasource":{"type":"prometheus","uid":"${source?.uid}"}`);
  });
});

const prometheusBinary = spawnSync('prometheus', ['--version']).status === 0;
if (!prometheusBinary) {
  console.log(
    '[dashboard] SKIPPED: the prometheus binary is not on PATH (apt-get install prometheus; .ci/run installs it)',
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe.skipIf(!prometheusBinary)(
  'the Grafana dashboard, against a Prometheus scraping both services',
  () => {
    let products: Awaited<ReturnType<typeof startProducts>>;
    let inventoryDb: TestDatabase;
    let inventory: App;
    let prometheus: ChildProcess;
    let prometheusUrl: string;
    let work: string;
    let traffic: Promise<void> | undefined;
    let stopping = false;

    async function query(expr: string): Promise<Sample[]> {
      const url = `${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`;
      const body = (await (await fetch(url)).json()) as {
        status: string;
        error?: string;
        data: { result: Sample[] };
      };
      expect(body.status, body.error).toBe('success');
      return body.data.result;
    }

    async function request(method: string, url: string, body?: unknown) {
      const response = await fetch(`${inventoryUrl}${url}`, {
        method,
        headers,
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      await response.arrayBuffer();
      return response.status;
    }
    let inventoryUrl: string;

    beforeAll(async () => {
      products = await startProducts();
      inventoryDb = await createTestDatabase('inventory');
      inventory = await buildInventory(inventoryDb.url, products.url, {
        OUTBOX_POLL_MS: '50',
        RESERVATION_SWEEP_MS: '200',
      });
      inventoryUrl = await inventory.listen({ host: '127.0.0.1', port: 0 });
      const productId = await createProductIn(products.app, 12.5);
      await setStockIn(inventory, productId, 1_000_000);

      // A little of everything, until the end of the file: purchases (201), one refused for want of
      // stock (409), an order, a reservation left to expire within the second (the sweeper's stock
      // changes), an unknown route (404), stock and product reads.
      traffic = (async () => {
        while (!stopping) {
          expect(await request('POST', '/api/purchases', purchaseBody(productId, 1))).toBe(201);
          expect(await request('POST', '/api/purchases', purchaseBody(productId, 2_000_000))).toBe(409);
          expect(
            await request('POST', '/api/orders', orderBody([{ producto_id: productId, cantidad: 1 }])),
          ).toBe(201);
          const line = [{ producto_id: productId, cantidad: 1 }];
          expect(await request('POST', '/api/reservations', reservationBody(line, 1))).toBe(201);
          expect(await request('GET', '/api/nowhere')).toBe(404);
          expect(await request('GET', `/api/inventory/${productId}`)).toBe(200);
          await fetch(`${products.url}/api/products/${productId}`, { headers }).then((r) => r.arrayBuffer());
          await sleep(100);
        }
      })();

      work = await mkdtemp(join(tmpdir(), 'catalogo-prometheus-'));
      const port = await closedPort();
      prometheusUrl = `http://127.0.0.1:${port}`;
      const target = (url: string) => new URL(url).host;
      await writeFile(
        join(work, 'prometheus.yml'),
        JSON.stringify({
          global: { scrape_interval: `${SCRAPE_SECONDS}s`, evaluation_interval: `${SCRAPE_SECONDS}s` },
          rule_files: [join(DIR, 'alerts.yml')],
          scrape_configs: [
            { job_name: 'products', static_configs: [{ targets: [target(products.url)] }] },
            { job_name: 'inventory', static_configs: [{ targets: [target(inventoryUrl)] }] },
          ],
        }),
      );
      prometheus = spawn(
        'prometheus',
        [
          `--config.file=${join(work, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(work, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let log = '';
      prometheus.stderr?.on('data', (chunk: Buffer) => {
        log += chunk.toString();
      });

      // Ready once both targets have been scraped several times: enough samples for a rate.
      const deadline = Date.now() + 45_000;
      for (;;) {
        const scrapes = await query(`count_over_time(up{job=~"products|inventory"}[1m]) >= 5`).catch(
          () => [],
        );
        if (scrapes.length === 2) break;
        if (Date.now() > deadline || prometheus.exitCode !== null) {
          throw new Error(`Prometheus did not scrape both services in time:\n${log}`);
        }
        await sleep(500);
      }
    });

    afterAll(async () => {
      stopping = true;
      await traffic;
      if (prometheus && prometheus.exitCode === null) {
        const exited = new Promise((resolve) => prometheus.once('exit', resolve));
        prometheus.kill('SIGTERM');
        await exited;
      }
      if (work) await rm(work, { recursive: true, force: true });
      await inventory?.close();
      await products?.close();
      await inventoryDb?.drop();
    });

    it('scrapes both services as up', async () => {
      const up = await query('up{job=~"products|inventory"}');
      expect(up.map((s) => [s.metric.job, s.value[1]]).sort()).toEqual([
        ['inventory', '1'],
        ['products', '1'],
      ]);
    });

    it.each(queries)('panel $name returns data', async ({ expr }) => {
      const samples = await query(substitute(expr));
      expect(samples.length, expr).toBeGreaterThan(0);
      expect(
        samples.some((s) => Number.isFinite(Number(s.value[1]))),
        `${expr} returned only ${JSON.stringify(samples)}`,
      ).toBe(true);
    });

    it('shows the stock changes the traffic makes, each under its cause', async () => {
      const panel = dashboard.panels.find((p) => p.title === 'Stock changes by cause')!;
      // Counters exported at 0 return data from the start: the causes of the traffic must be moving.
      await expect
        .poll(
          async () => {
            const samples = await query(substitute(panel.targets![0]!.expr));
            return samples
              .filter((sample) => Number(sample.value[1]) > 0)
              .map((sample) => sample.metric.causa)
              .sort();
          },
          { timeout: 20_000, interval: 1_000 },
        )
        .toEqual(expect.arrayContaining(['expiry', 'purchase', 'reservation']));
      const expired = await query('sum(increase(reservations_expired_total[1m]))');
      expect(Number(expired[0]?.value[1])).toBeGreaterThan(0);
    });

    it('evaluates every alert rule on the live series without error', async () => {
      // One evaluation after the samples above exist.
      await sleep(2 * SCRAPE_SECONDS * 1000);
      const response = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as {
        data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
      };
      const rules = response.data.groups.flatMap((group) => group.rules);
      expect(rules.length).toBeGreaterThan(0);
      for (const rule of rules)
        expect({ rule: rule.name, health: rule.health, error: rule.lastError ?? '' }).toEqual({
          rule: rule.name,
          health: 'ok',
          error: '',
        });
    });
  },
);
