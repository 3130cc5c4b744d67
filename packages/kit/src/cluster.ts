import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

export interface ClusterOptions {
  /** Workers to keep running, each a whole instance of the service. */
  instances: number;
  logger: Logger;
  /** How long the workers get, once told to stop, before the ones still running are killed. */
  graceMs: number;
}

/** A worker that crashes is replaced after this, doubled on each crash in a row, up to the maximum. */
const RESTART_DELAY_MS = 1_000;
const RESTART_DELAY_MAX_MS = 30_000;
/** A replacement that has served this long ends the run of crashes: the next one waits 1 s again. */
const STABLE_AFTER_MS = 60_000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * The cluster primary of a service started with `INSTANCES` > 1: it forks that many workers, each
 * building the whole service and listening on the same port. The primary owns the socket and hands
 * each new connection to the next worker in turn (round-robin, Node's default except on Windows),
 * so requests spread over the instances as behind any balancer; nothing but the database is
 * shared, which is what every guarantee already relies on.
 *
 * - A worker of the first set that dies before it listened is a start-up failure (bad database
 *   URL, port taken): every other worker would meet it too, so everything stops with exit code 1.
 * - Once they all listened, a worker that dies is replaced, after 1 s, doubling up to 30 s while the
 *   replacements keep dying; the others go on serving meanwhile.
 * - SIGINT, SIGTERM or SIGHUP stops every worker gracefully (each finishes its in-flight requests) within
 *   `graceMs`, kills the ones still running past it, then the primary exits 0.
 */
export function runClusterPrimary(options: ClusterOptions): void {
  const { logger: log } = options;
  let stopping = false;
  let crashes = 0;
  let started = 0;

  function fork(): void {
    const startedAt = Date.now();
    const worker = cluster.fork();
    worker.once('listening', () => {
      started += 1;
      log.info({ worker: worker.process.pid }, 'instance listening');
    });
    worker.once('exit', (code, signal) => {
      if (stopping) return;
      const how = signal ?? `code ${code}`;
      if (started < options.instances) {
        log.fatal({ worker: worker.process.pid }, `an instance failed to start (${how}): stopping`);
        void stop(1);
        return;
      }
      crashes = Date.now() - startedAt >= STABLE_AFTER_MS ? 1 : crashes + 1;
      const delay = Math.min(RESTART_DELAY_MS * 2 ** (crashes - 1), RESTART_DELAY_MAX_MS);
      log.error({ worker: worker.process.pid, delayMs: delay }, `instance exited (${how}): restarting it`);
      setTimeout(() => {
        if (!stopping) fork();
      }, delay);
    });
  }

  async function stop(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    log.info({ instances: workers.length }, 'stopping every instance');
    const exited = workers.map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once('exit', () => resolve());
          worker.process.kill('SIGTERM');
        }),
    );
    const timer = setTimeout(() => {
      log.warn(`instances still running after ${options.graceMs / 1000} s: killing them`);
      for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, options.graceMs);
    await Promise.all(exited);
    clearTimeout(timer);
    log.info('stopped');
    log.flush();
    process.exit(code);
  }

  for (const signal of SIGNALS) process.on(signal, () => void stop(0));
  log.info({ instances: options.instances }, `starting ${options.instances} instances`);
  for (let i = 0; i < options.instances; i++) fork();
}
