/**
 * NATS for the event tests: whether a JetStream answers, a NATS server of the test's own (started,
 * killed and restarted at will on a free port with its own store), and reading a stream back.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

/** Whether a NATS with JetStream answers at `url` within a second. */
export async function natsAnswers(url: string | undefined): Promise<boolean> {
  if (!url) return false;
  try {
    const nc = await connect({ servers: url, timeout: 1_000, maxReconnectAttempts: 0 });
    try {
      await jetstreamManager(nc);
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/** The nats-server binary: on PATH, or where the Debian package puts it; undefined when absent. */
export const NATS_SERVER_BINARY = ['nats-server', '/usr/sbin/nats-server'].find(
  (binary) => spawnSync(binary, ['--version']).status === 0,
);

export interface Envelope {
  id: string;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
}

export interface Received {
  subject: string;
  msgId: string | undefined;
  event: Envelope;
}

/** Every message the stream holds, in stream order. */
export async function readStream(nc: NatsConnection, stream: string): Promise<Received[]> {
  const { state } = await (await jetstreamManager(nc)).streams.info(stream);
  const received: Received[] = [];
  if (state.messages === 0) return received;
  const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  for await (const m of messages) {
    received.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), event: m.json<Envelope>() });
    if (received.length === state.messages) break;
  }
  return received;
}

/** How many messages the stream holds now (0 when it does not exist yet). */
export async function streamCount(nc: NatsConnection, stream: string): Promise<number> {
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface OwnNats {
  url: string;
  start(): Promise<void>;
  /** SIGTERM lets it shut down; SIGKILL is a crash (what it acknowledged was written, not flushed). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops it for good and deletes its store. */
  dispose(): Promise<void>;
}

/** A nats-server with JetStream of the test's own, so it can be killed without disturbing anyone. */
export async function ownNats(binary: string): Promise<OwnNats> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), 'inventory-nats-'));
  const url = `nats://127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const child = server;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };
  const nats: OwnNats = {
    url,
    async start() {
      server = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], {
        stdio: 'ignore',
      });
      const deadline = Date.now() + 10_000;
      while (!(await natsAnswers(url))) {
        if (Date.now() > deadline) throw new Error(`nats-server did not start on port ${port}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop,
    async dispose() {
      await stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
  await nats.start();
  return nats;
}
