/**
 * The Kubernetes manifests (deploy/k8s) as a cluster would receive them: rendered by kustomize,
 * every core object valid against the Kubernetes schemas, the CloudNativePG and NATS objects shaped
 * as their operators document, and the Deployments wired to what the services really read — the
 * env names their config loads, the port they listen on, /health, and a grace period that outlasts
 * their shutdown.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, DEV_API_KEY } from '@catalogo/kit/config';
import { SHUTDOWN_DELAY_MS } from '@catalogo/kit/server';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig as loadGatewayConfig } from '../services/gateway/src/config.js';
import { ROUTES as GATEWAY_ROUTES } from '../services/gateway/src/proxy/proxy.routes.js';
import { loadConfig as loadInventoryConfig } from '../services/inventory/src/config.js';
import { loadConfig as loadProductsConfig } from '../services/products/src/config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

/** The core kinds the manifests may use, each with the schema it must satisfy. */
const CORE_MODELS: Record<string, new (data: never) => { validate: () => void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/Namespace': Namespace,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
};
const CNPG_CLUSTER = 'postgresql.cnpg.io/v1/Cluster';
/** The Prometheus Operator's kinds, shaped as its documentation says (checked field by field below). */
const SERVICE_MONITOR = 'monitoring.coreos.com/v1/ServiceMonitor';
const PROMETHEUS_RULE = 'monitoring.coreos.com/v1/PrometheusRule';
const OPERATOR_KINDS = [CNPG_CLUSTER, SERVICE_MONITOR, PROMETHEUS_RULE];

/**
 * A rendered object. Its body is untyped YAML walked field by field below: the core kinds are first
 * proven valid against their schemas, and every field the checks read is asserted, so a missing one
 * fails the test rather than passing unseen.
 */
type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: untyped YAML, see above
  [field: string]: any;
};

function render(dir: string): Manifest[] {
  const result = spawnSync('kubectl', ['kustomize', `deploy/k8s/${dir}`], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`kubectl kustomize deploy/k8s/${dir} failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout).map((doc) => doc.toJS() as Manifest);
}

const typeOf = (m: Manifest) => `${m.apiVersion}/${m.kind}`;
const find = (all: Manifest[], kind: string, name: string) => {
  const found = all.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} named ${name}`);
  return found;
};
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Every environment variable a config loader reads, found by watching it read. */
function envNamesRead(load: (env: Record<string, string | undefined>) => unknown): Set<string> {
  const read = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get: (_target, name) => {
      if (typeof name === 'string') read.add(name);
      return undefined;
    },
  });
  try {
    load(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
  }
  return read;
}

const SERVICES = [
  { name: 'products', load: loadProductsConfig },
  { name: 'inventory', load: loadInventoryConfig },
] as const;

/** The gateway's routes, path prefix to service, and the console (everything else) to the gateway. */
const ROUTES: Record<string, string> = {
  '/': 'gateway',
  ...Object.fromEntries(GATEWAY_ROUTES.map((route) => [route.prefix, route.upstream])),
};

describe.skipIf(!KUBECTL)(
  `Kubernetes manifests${KUBECTL ? '' : ' (skipped: kubectl is not on PATH)'}`,
  () => {
    describe.each(['base', 'overlays/production'])('%s', (dir) => {
      const all = render(dir);
      const deployments = all.filter((m) => m.kind === 'Deployment');

      it('renders only kinds it knows, and every core object satisfies the Kubernetes schema', () => {
        expect(all.length).toBeGreaterThan(10);
        for (const manifest of all) {
          const type = typeOf(manifest);
          if (OPERATOR_KINDS.includes(type)) continue;
          const Model = CORE_MODELS[type];
          expect(Model, `${type} ${manifest.metadata.name} has no schema here`).toBeDefined();
          expect(
            () => new (Model as NonNullable<typeof Model>)(manifest as never).validate(),
            `${type} ${manifest.metadata.name}`,
          ).not.toThrow();
        }
      });

      it.each(SERVICES)(
        '$name: a hardened Deployment with ≥ 2 replicas wired to the real config',
        ({ name, load }) => {
          const deployment = find(all, 'Deployment', name);
          const pod = deployment.spec.template.spec;
          const [container, ...others] = pod.containers;
          expect(others).toEqual([]);
          expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
          expect(
            matches(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels),
          ).toBe(true);

          // Every variable it is given is one the service reads (a typo would be silently ignored).
          const read = envNamesRead(load);
          const configMaps = (container.envFrom ?? []).map((source: { configMapRef: { name: string } }) =>
            find(all, 'ConfigMap', source.configMapRef.name),
          );
          const given = [
            ...configMaps.flatMap((cm: Manifest) => Object.keys(cm.data)),
            ...container.env.map((e: { name: string }) => e.name),
          ];
          expect(given.filter((n) => !read.has(n))).toEqual([]);
          expect(given).toEqual(expect.arrayContaining(['NODE_ENV', 'PORT', 'DATABASE_URL', 'API_KEYS']));
          const settings = Object.assign({}, ...configMaps.map((cm: Manifest) => cm.data)) as Record<
            string,
            string
          >;
          expect(settings.NODE_ENV).toBe('production');

          // It listens where the probes and the Service look.
          const port = container.ports.find((p: { name: string }) => p.name === 'http');
          expect(port.containerPort).toBe(Number(settings.PORT));
          for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
            expect(probe.httpGet).toEqual({ path: '/health', port: 'http' });
          }
          const service = find(all, 'Service', name);
          expect(matches(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
          expect(service.spec.ports).toEqual([expect.objectContaining({ name: 'http', targetPort: 'http' })]);

          // Keys from the Secret, the database from the CloudNativePG cluster's generated Secret.
          const fromSecret = (envName: string) =>
            container.env.find((e: { name: string }) => e.name === envName)?.valueFrom?.secretKeyRef;
          expect(fromSecret('API_KEYS')).toMatchObject({ name: 'catalogo-api-keys', key: 'API_KEYS' });
          const cluster = find(all, 'Cluster', `${name}-db`);
          expect(fromSecret('DATABASE_URL')).toEqual({ name: `${cluster.metadata.name}-app`, key: 'uri' });

          // Non-root, nothing writable but /tmp, bounded resources.
          expect(pod.securityContext.runAsNonRoot).toBe(true);
          expect(container.securityContext).toMatchObject({
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
          });
          const tmp = container.volumeMounts.find((v: { mountPath: string }) => v.mountPath === '/tmp');
          expect(pod.volumes.find((v: { name: string }) => v.name === tmp.name).emptyDir).toBeDefined();
          for (const bound of ['requests', 'limits']) {
            expect(container.resources[bound]).toEqual({ cpu: expect.anything(), memory: expect.anything() });
          }

          // SIGKILL comes only after the endpoints are gone (preStop) and the service's own drain.
          const [sleep, seconds] = container.lifecycle.preStop.exec.command;
          expect(sleep).toBe('sleep');
          expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(
            Number(seconds) + SHUTDOWN_DELAY_MS / 1000,
          );

          // Scaled and protected.
          const hpa = find(all, 'HorizontalPodAutoscaler', name);
          expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name });
          expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
          expect(hpa.spec.minReplicas).toBeLessThanOrEqual(deployment.spec.replicas);
          const pdb = find(all, 'PodDisruptionBudget', name);
          expect(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
          expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
        },
      );

      it('inventory calls Products through its Service with a key of the same Secret', () => {
        const settings = find(all, 'ConfigMap', 'inventory-config').data;
        const url = new URL(settings.PRODUCTS_URL);
        const products = find(all, 'Service', 'products');
        expect(url.hostname).toBe('products');
        expect(Number(url.port)).toBe(products.spec.ports[0].port);
        const container = find(all, 'Deployment', 'inventory').spec.template.spec.containers[0];
        const key = container.env.find((e: { name: string }) => e.name === 'PRODUCTS_API_KEY');
        expect(key.valueFrom.secretKeyRef).toEqual({ name: 'catalogo-api-keys', key: 'PRODUCTS_API_KEY' });
        expect(new URL(settings.NATS_URL).hostname).toBe('nats');
        find(all, 'Service', 'nats');
      });

      it('the placeholder keys are refused in production, so a forgotten Secret cannot start a service', () => {
        const secret = find(all, 'Secret', 'catalogo-api-keys');
        for (const { load } of SERVICES) {
          expect(() =>
            load({ ...secret.stringData, NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x' }),
          ).toThrow(ConfigError);
        }
        expect(Object.values(secret.stringData)).not.toContain(DEV_API_KEY);
      });

      it('PostgreSQL: one CloudNativePG cluster per service, 3 instances, a synchronous standby required', () => {
        const clusters = all.filter((m) => typeOf(m) === CNPG_CLUSTER);
        expect(clusters.map((c) => c.metadata.name).sort()).toEqual(['inventory-db', 'products-db']);
        for (const cluster of clusters) {
          expect(cluster.spec.instances).toBe(3);
          expect(cluster.spec.postgresql.synchronous).toEqual({
            method: 'any',
            number: 1,
            dataDurability: 'required',
          });
          expect(cluster.spec.bootstrap.initdb).toEqual({
            database: expect.any(String),
            owner: expect.any(String),
          });
          expect(cluster.spec.storage.size).toMatch(/^\d+Gi$/);
          // Every replica's pool at the HPA's maximum fits the database's connections.
          const service = cluster.metadata.name.replace(/-db$/, '');
          const hpa = find(all, 'HorizontalPodAutoscaler', service);
          const pool = Number(find(all, 'ConfigMap', `${service}-config`).data.DATABASE_POOL_MAX);
          expect(hpa.spec.maxReplicas * pool).toBeLessThan(
            Number(cluster.spec.postgresql.parameters.max_connections),
          );
        }
      });

      it('NATS: a 3-node JetStream cluster whose routes name every server through the headless Service', () => {
        const nats = find(all, 'StatefulSet', 'nats');
        expect(nats.spec.replicas).toBe(3);
        const headless = find(all, 'Service', nats.spec.serviceName);
        expect(headless.spec.clusterIP).toBe('None');
        expect(matches(headless.spec.selector, nats.spec.template.metadata.labels)).toBe(true);
        const config: string = find(all, 'ConfigMap', 'nats-config').data['nats.conf'];
        expect(config).toMatch(/jetstream\s*\{[^}]*store_dir:\s*\/data/);
        const container = nats.spec.template.spec.containers[0];
        const port = (name: string) =>
          container.ports.find((p: { name: string }) => p.name === name).containerPort;
        expect(config).toContain(`port: ${port('client')}`);
        expect(config).toMatch(new RegExp(`cluster\\s*\\{[^}]*port: ${port('cluster')}`));
        for (let i = 0; i < nats.spec.replicas; i++) {
          expect(config).toContain(`nats://nats-${i}.${headless.metadata.name}:${port('cluster')}`);
        }
        expect(nats.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
        expect(find(all, 'PodDisruptionBudget', 'nats').spec.maxUnavailable).toBe(1);
      });

      it.each(SERVICES)(
        '$name: a ServiceMonitor scrapes every pod behind its Service at /metrics',
        ({ name }) => {
          const monitor = all.find((m) => typeOf(m) === SERVICE_MONITOR && m.metadata.name === name);
          expect(monitor, `ServiceMonitor ${name}`).toBeDefined();
          const service = find(all, 'Service', name);
          // The operator names the job after the Service: the job the alert rules select.
          expect(service.metadata.name).toMatch(/^(products|inventory)$/);
          expect(matches(monitor!.spec.selector.matchLabels, service.metadata.labels ?? {})).toBe(true);
          expect(monitor!.spec.endpoints).toHaveLength(1);
          const [endpoint] = monitor!.spec.endpoints;
          expect(service.spec.ports.map((p: { name: string }) => p.name)).toContain(endpoint.port);
          expect(endpoint.path).toBe('/metrics');
          expect(endpoint.interval).toMatch(/^\d+s$/);
          if (monitor!.metadata.namespace !== undefined)
            expect(monitor!.metadata.namespace).toBe(service.metadata.namespace);
        },
      );

      it('the PrometheusRule holds exactly the rules of deploy/observability/alerts.yml', () => {
        const rules = all.filter((m) => typeOf(m) === PROMETHEUS_RULE);
        expect(rules).toHaveLength(1);
        const tested = parse(readFileSync(`${ROOT}deploy/observability/alerts.yml`, 'utf8')) as {
          groups: unknown[];
        };
        // kustomize re-folds multi-line expressions; PromQL ignores the whitespace it changes.
        const folded = (groups: unknown) =>
          JSON.parse(JSON.stringify(groups), (key, value) =>
            key === 'expr' ? String(value).replace(/\s+/g, ' ').trim() : value,
          );
        expect(folded(rules[0]!.spec)).toEqual(folded({ groups: tested.groups }));
      });

      it('the Ingress routes every public path to its service; the event stream unbuffered', () => {
        const routes: Record<string, string> = {};
        const ingresses = all.filter((m) => m.kind === 'Ingress');
        for (const ingress of ingresses) {
          for (const rule of ingress.spec.rules) {
            for (const path of rule.http.paths) {
              const service = find(all, 'Service', path.backend.service.name);
              expect(service.spec.ports.map((p: { name: string }) => p.name)).toContain(
                path.backend.service.port.name,
              );
              routes[path.path] = service.metadata.name;
            }
          }
        }
        expect(routes).toEqual(ROUTES);
        const events = ingresses.find((i) =>
          i.spec.rules[0].http.paths.some((p: { path: string }) => p.path === '/api/events'),
        );
        expect(events?.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
        expect(deployments.length).toBe(3);
      });

      it('gateway: a hardened Deployment that forwards to the services’ Services', () => {
        const deployment = find(all, 'Deployment', 'gateway');
        const pod = deployment.spec.template.spec;
        const [container, ...others] = pod.containers;
        expect(others).toEqual([]);
        expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
        const read = envNamesRead(loadGatewayConfig);
        const settings = find(all, 'ConfigMap', container.envFrom[0].configMapRef.name).data as Record<
          string,
          string
        >;
        expect(Object.keys(settings).filter((n) => !read.has(n))).toEqual([]);
        expect(container.env).toBeUndefined();
        expect(settings.NODE_ENV).toBe('production');
        const port = container.ports.find((p: { name: string }) => p.name === 'http');
        expect(port.containerPort).toBe(Number(settings.PORT));
        // Ready while both services answer; alive while it accepts connections, whatever they do.
        expect(container.readinessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
        expect(container.livenessProbe.tcpSocket).toEqual({ port: 'http' });
        for (const [variable, name] of [
          ['PRODUCTS_URL', 'products'],
          ['INVENTORY_URL', 'inventory'],
        ] as const) {
          const url = new URL(settings[variable]!);
          expect(url.hostname).toBe(name);
          expect(Number(url.port)).toBe(find(all, 'Service', name).spec.ports[0].port);
        }
        const service = find(all, 'Service', 'gateway');
        expect(matches(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
        expect(pod.securityContext.runAsNonRoot).toBe(true);
        expect(container.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
        });
        const [, seconds] = container.lifecycle.preStop.exec.command;
        expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(Number(seconds) + SHUTDOWN_DELAY_MS / 1000);
        const pdb = find(all, 'PodDisruptionBudget', 'gateway');
        expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
      });
    });

    it('production: its own namespace, tagged images, three replicas, TLS', () => {
      const all = render('overlays/production');
      for (const m of all.filter((x) => x.kind !== 'Namespace'))
        expect(m.metadata.namespace).toBe('catalogo');
      for (const deployment of all.filter((m) => m.kind === 'Deployment')) {
        expect(deployment.spec.replicas).toBe(3);
        expect(deployment.spec.template.spec.containers[0].image).toMatch(/:\d+\.\d+\.\d+$/);
      }
      for (const ingress of all.filter((m) => m.kind === 'Ingress')) expect(ingress.spec.tls).toHaveLength(1);
    });
  },
);
