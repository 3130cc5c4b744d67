import { fileURLToPath } from 'node:url';
import {
  EnvReader,
  type HttpLimits,
  MAX_INSTANCES,
  readHttpLimits,
  readLogLevel,
} from '@catalogo/kit/config';

export interface GatewayConfig {
  nodeEnv: string;
  port: number;
  host: string;
  logLevel: string;
  /** Processes serving the port together, as for the services (the gateway keeps no state). */
  instances: number;
  http: HttpLimits;
  metricsCacheMs: number;
  productsUrl: string;
  inventoryUrl: string;
  /**
   * How long an upstream may take to send its response headers, and then to send each part of its
   * body. Longer than the services' own deadline (REQUEST_TIMEOUT_MS, 10 s), so that a slow request
   * is normally answered by the service's own 503 and this bound only catches a service that hangs.
   * `/api/events` waits this long for its headers only: a stream has no end.
   */
  upstreamTimeoutMs: number;
  /** Keep-alive connections the gateway holds to each service at most. */
  upstreamConnections: number;
  /** The built console (index.html and its assets); served at `/` when the folder exists. */
  consoleDir: string;
}

/** `console/dist` of the repository: three levels up from both `src/` and the compiled `dist/`. */
const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../console/dist', import.meta.url));

export function loadConfig(env: Record<string, string | undefined>): GatewayConfig {
  const reader = new EnvReader(env);
  // GATEWAY_PORT is what `npm start` and a shell with the three ports set use; PORT what a container uses.
  const port = reader.optional('GATEWAY_PORT') === undefined ? 'PORT' : 'GATEWAY_PORT';
  const config = {
    nodeEnv: reader.string('NODE_ENV', 'development'),
    port: reader.int(port, 3000, 0, 65535),
    host: reader.string('HOST', '0.0.0.0'),
    logLevel: readLogLevel(reader),
    instances: reader.int('INSTANCES', 1, 1, MAX_INSTANCES),
    http: readHttpLimits(reader),
    metricsCacheMs: reader.int('METRICS_CACHE_MS', 1_000, 0, 60_000),
    productsUrl: reader.url('PRODUCTS_URL', 'http://127.0.0.1:3001'),
    inventoryUrl: reader.url('INVENTORY_URL', 'http://127.0.0.1:3002'),
    upstreamTimeoutMs: reader.int('UPSTREAM_TIMEOUT_MS', 15_000, 100, 600_000),
    upstreamConnections: reader.int('UPSTREAM_CONNECTIONS', 128, 1, 10_000),
    consoleDir: reader.string('CONSOLE_DIR', DEFAULT_CONSOLE_DIR),
  };
  reader.done();
  return config;
}
