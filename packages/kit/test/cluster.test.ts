/**
 * INSTANCES > 1 (packages/kit/src/cluster.ts), on a minimal service run as a real process: its
 * workers share the port and connections go to each in turn; a worker that dies while serving is
 * replaced and the others keep serving; SIGTERM stops every worker and the primary exits 0; a
 * worker that cannot start stops everything with exit code 1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/cluster-service.ts', import.meta.url));
const started: ChildProcess[] = [];

afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });

function start(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** One request on a connection of its own, which the primary hands to the next worker. */
function send(port: number, method: string, path: string): Promise<{ pid?: number; exiting?: number }> {
  return new Promise((resolve, reject) => {
    // Bounded: a connection handed to a worker at the moment it exits is never answered.
    const req = request({ port, host: '127.0.0.1', method, path, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** The pids that answer `tries` requests in a row, once they all do. */
async function workers(port: number, tries: number, timeoutMs = 60_000): Promise<Set<number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const pids = new Set<number>();
      for (let i = 0; i < tries; i++) pids.add((await send(port, 'GET', '/pid')).pid!);
      return pids;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('three workers share the port; a dead one is replaced; SIGTERM stops them all, exit 0', async () => {
  const port = await freePort();
  const service = start({ PORT: String(port), INSTANCES: '3' });
  const deadline = Date.now() + 200_000;
  while ((service.output().match(/instance listening/g) ?? []).length < 3) {
    expect(Date.now(), service.output()).toBeLessThan(deadline);
    await sleep(100);
  }
  const first = await workers(port, 6);
  expect(first.size).toBe(3);
  expect(first.has(service.child.pid!)).toBe(false);

  const { exiting } = await send(port, 'POST', '/exit');
  expect(first.has(exiting!)).toBe(true);
  // The other two serve meanwhile; a replacement joins them about a second later.
  const meanwhile = await workers(port, 4);
  expect(meanwhile.has(exiting!)).toBe(false);
  let now = meanwhile;
  while (now.size < 3) {
    expect(Date.now(), service.output()).toBeLessThan(deadline);
    await sleep(200);
    now = await workers(port, 6);
  }
  expect(service.output()).toMatch(/instance exited \(code 3\): restarting it/);

  service.child.kill('SIGTERM');
  expect(await Promise.race([service.exited, sleep(30_000, 'timeout')]), service.output()).toBe(0);
  for (const pid of now) expect(isAlive(pid)).toBe(false);
}, 240_000);

it('a worker that cannot start stops every instance with exit code 1', async () => {
  const service = start({ PORT: String(await freePort()), INSTANCES: '2', FAIL_START: '1' });
  expect(await Promise.race([service.exited, sleep(200_000, 'timeout')]), service.output()).toBe(1);
  expect(service.output()).toMatch(/an instance failed to start/);
}, 240_000);
