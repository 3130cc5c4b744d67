import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const OUTPUT_KEPT = 64 * 1024;

export interface ServiceProcess {
  name: string;
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** The last 64 KiB the process wrote (its warnings and errors: LOG_LEVEL=warn). */
  output: () => string;
}

/**
 * A service as it runs in production, in a process of its own: `node --import tsx
 * --conditions=source services/<name>/src/server.ts` on 127.0.0.1 and the given port. NATS_URL is
 * not passed on, so the events stay in the outbox where the checks read them.
 */
export function spawnService(
  name: 'products' | 'inventory',
  port: number,
  env: Record<string, string>,
): ServiceProcess {
  const { NATS_URL: _nats, ...inherited } = process.env;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', `services/${name}/src/server.ts`],
    {
      cwd: ROOT,
      env: { ...inherited, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_KEPT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { name, url: `http://127.0.0.1:${port}`, child, exited, output: () => output };
}

/** Polls `/health` until it answers 200; fails with the process output after `timeoutMs`. */
export async function waitHealthy(service: ServiceProcess, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (service.child.exitCode !== null) {
      throw new Error(`${service.name} exited with ${service.child.exitCode}:\n${service.output()}`);
    }
    try {
      const res = await fetch(`${service.url}/health`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return Date.now() - started;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  throw new Error(`${service.name} not healthy after ${timeoutMs} ms:\n${service.output()}`);
}

/** SIGKILL: no shutdown hook runs, in-flight requests and open transactions are cut where they are. */
export async function killHard(service: ServiceProcess): Promise<void> {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
  await service.exited;
}

/** SIGTERM and wait (SIGKILL after 10 s): the end of a test, leaving no process behind. */
export async function stopGracefully(service: ServiceProcess): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill('SIGTERM');
  const stopped = await Promise.race([service.exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!stopped) await killHard(service);
}
