import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';
import type { App } from './app.js';
import { runClusterPrimary } from './cluster.js';
import { ConfigError } from './config.js';
import { createLogger } from './logger.js';
import { shutdownTracing } from './tracing.js';

/**
 * How long a stopping service waits for in-flight requests and its pool before it exits anyway.
 * Deployments give a pod at least this long between SIGTERM and SIGKILL.
 */
export const SHUTDOWN_DELAY_MS = 10_000;

/** What runService needs of a service's configuration. */
interface ServiceConfig {
  host: string;
  port: number;
  logLevel: string;
  nodeEnv: string;
  instances: number;
}

export interface ServiceDefinition<C extends ServiceConfig> {
  name: string;
  loadConfig: (env: NodeJS.ProcessEnv) => C;
  /** Builds the ready-to-listen app; closing the app must release everything it opened. */
  build: (config: C, logger: Logger) => Promise<App>;
}

/**
 * The process entry point of a service: load config (exit 1 with every problem listed), build,
 * listen, and on SIGINT/SIGTERM stop accepting, let in-flight requests finish and close the pool.
 * With INSTANCES > 1 this process becomes the cluster primary and each of its workers does the above.
 */
export async function runService<C extends ServiceConfig>(definition: ServiceDefinition<C>): Promise<void> {
  let config: C;
  try {
    config = definition.loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`[${definition.name}] ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(definition.name, config.logLevel);
  if (config.instances > 1 && cluster.isPrimary) {
    // The workers' own grace period, and a little more for their last log lines.
    runClusterPrimary({ instances: config.instances, logger, graceMs: SHUTDOWN_DELAY_MS + 2_000 });
    return;
  }
  let app: App;
  try {
    app = await definition.build(config, logger);
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    logger.fatal({ err }, 'service failed to start');
    logger.flush();
    process.exit(1);
  }
  // A terminal's Ctrl-C (or hang-up) reaches a cluster's whole process group, and a second signal
  // makes close-with-grace exit at once: a worker leaves those to its primary, whose SIGTERM is its
  // one signal to stop.
  const primaryStops = cluster.isWorker ? (['SIGINT', 'SIGHUP'] as const) : [];
  for (const signal of primaryStops) process.on(signal, () => {});
  closeWithGrace({ delay: SHUTDOWN_DELAY_MS, skip: [...primaryStops] }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an unexpected error');
    else logger.info({ signal }, 'shutting down: finishing in-flight requests');
    await app.close();
    await shutdownTracing();
    logger.info('stopped');
  });
}
