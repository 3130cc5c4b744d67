/**
 * The compose profile `observability`, checked by reading (no Docker engine runs the tests): every
 * file it mounts exists, Prometheus scrapes the compose services under the job names the alert
 * rules select and loads the rules from where they are mounted, Grafana reads its dashboards from
 * where they are mounted, and the services can be given Jaeger's OTLP endpoint.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => parse(readFileSync(join(ROOT, path), 'utf8'));

interface ComposeService {
  image?: string;
  profiles?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  command?: string[];
}
const compose = read('docker-compose.yml') as { services: Record<string, ComposeService> };
const observability = Object.entries(compose.services)
  .filter(([, service]) => service.profiles?.includes('observability'))
  .map(([name]) => name);

/** Bind mounts of a service: repository path → container path. */
function mounts(service: string): Map<string, string> {
  const binds = (compose.services[service]?.volumes ?? []).filter((volume) => volume.startsWith('./'));
  return new Map(
    binds.map((volume) => {
      const [source, target] = volume.split(':');
      return [source!.slice(2), target!];
    }),
  );
}

describe('the compose profile observability', () => {
  it('runs Prometheus, Grafana and Jaeger, each from a pinned image', () => {
    expect(observability.sort()).toEqual(['grafana', 'jaeger', 'prometheus']);
    for (const name of observability) expect(compose.services[name]!.image).toMatch(/:v?\d+\.\d+\.\d+$/);
  });

  it('mounts only files and folders of the repository that exist', () => {
    for (const name of observability) {
      for (const source of mounts(name).keys()) expect(existsSync(join(ROOT, source)), source).toBe(true);
    }
  });

  it('has Prometheus scrape both services, under the alert rules’ job names, with the rules loaded', () => {
    const prometheus = mounts('prometheus');
    const configPath = [...prometheus.entries()].find(
      ([, target]) => target === '/etc/prometheus/prometheus.yml',
    );
    expect(configPath, 'prometheus.yml mounted where the command reads it').toBeDefined();
    expect(compose.services.prometheus!.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const config = read(configPath![0]) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.rule_files).toEqual([prometheus.get('deploy/observability/alerts.yml')]);
    const targets = Object.fromEntries(
      config.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((s) => s.targets)]),
    );
    expect(targets).toEqual({ products: ['products:3001'], inventory: ['inventory:3002'] });
    for (const [job, [target]] of Object.entries(targets)) {
      const [service, port] = target!.split(':');
      expect(compose.services[service!]?.environment?.PORT, `${job} listens where it is scraped`).toBe(port);
    }
  });

  it('has Grafana provision the Prometheus data source and the dashboard from where they are mounted', () => {
    const grafana = mounts('grafana');
    expect(grafana.get('deploy/observability/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const providers = read('deploy/observability/grafana/provisioning/dashboards/catalogo.yml') as {
      providers: { options: { path: string } }[];
    };
    const dashboards = providers.providers[0]!.options.path;
    expect(grafana.get('deploy/observability/grafana/dashboards')).toBe(dashboards);
    const home = compose.services.grafana!.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(home).toBe(`${dashboards}/catalogo.json`);
    const sources = read('deploy/observability/grafana/provisioning/datasources/prometheus.yml') as {
      datasources: { url: string }[];
    };
    expect(sources.datasources[0]!.url).toBe('http://prometheus:9090');
  });

  it('lets both services send their traces to Jaeger’s OTLP port', () => {
    for (const service of ['products', 'inventory']) {
      // Passed through from the environment; empty (no tracing) unless given.
      expect(compose.services[service]!.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toMatch(
        /^\$\{OTEL_EXPORTER_OTLP_ENDPOINT:-\}$/,
      );
    }
    expect(compose.services.jaeger!.ports?.some((port) => port.endsWith(':4318'))).toBe(true);
  });
});
