import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';
import type { App } from './app.js';
import { ConfigError } from './config.js';
import { createLogger } from './logger.js';
import { shutdownTracing } from './tracing.js';

/**
 * How long a stopping service waits for in-flight requests and its pool before it exits anyway.
 * Deployments give a pod at least this long between SIGTERM and SIGKILL.
 */
export const SHUTDOWN_DELAY_MS = 10_000;

export interface ServiceDefinition<
  C extends { host: string; port: number; logLevel: string; nodeEnv: string },
> {
  name: string;
  loadConfig: (env: NodeJS.ProcessEnv) => C;
  /** Builds the ready-to-listen app; closing the app must release everything it opened. */
  build: (config: C, logger: Logger) => Promise<App>;
}

/**
 * The process entry point of a service: load config (exit 1 with every problem listed), build,
 * listen, and on SIGINT/SIGTERM stop accepting, let in-flight requests finish and close the pool.
 */
export async function runService<C extends { host: string; port: number; logLevel: string; nodeEnv: string }>(
  definition: ServiceDefinition<C>,
): Promise<void> {
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
  let app: App;
  try {
    app = await definition.build(config, logger);
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    logger.fatal({ err }, 'service failed to start');
    logger.flush();
    process.exit(1);
  }
  closeWithGrace({ delay: SHUTDOWN_DELAY_MS }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an unexpected error');
    else logger.info({ signal }, 'shutting down: finishing in-flight requests');
    await app.close();
    await shutdownTracing();
    logger.info('stopped');
  });
}
