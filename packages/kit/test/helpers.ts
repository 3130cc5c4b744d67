import { connect, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { type BaseConfig, EnvReader, readBaseConfig } from '../src/config.js';

/** The configuration a service would read from `env`, defaults included. */
export function kitConfig(env: Record<string, string> = {}): BaseConfig {
  const reader = new EnvReader({ DATABASE_URL: 'postgres://kit@127.0.0.1/kit', ...env });
  const config = readBaseConfig(reader, 0);
  reader.done();
  return config;
}

/** A logger at `trace` whose lines land, parsed, in `lines`. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

export interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  received: () => string;
  /** Resolves when the server has closed the connection, with the milliseconds since it opened. */
  closed: Promise<number>;
}

/** A plain TCP connection to 127.0.0.1:`port` that writes `text` once connected. */
export async function rawConnection(port: number, text = ''): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1');
  const started = performance.now();
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  // A refused or reset connection is what some tests wait for, not a failure.
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => {
    socket.on('close', () => resolve(performance.now() - started));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (text) socket.write(text);
  return { socket, received: () => received, closed };
}

/** Resolves with `promise`, or with `fallback` after `ms`. */
export function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<F>((resolve) => {
      timer = setTimeout(() => resolve(fallback), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
