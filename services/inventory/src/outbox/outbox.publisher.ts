import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  jetstream,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { NatsConfig } from '../config.js';
import type { OutboxEvent } from './outbox.repository.js';

/** Where the relay delivers events besides the log. */
export interface EventPublisher {
  /** Resolves when the broker can take events now (connected, stream present); rejects otherwise. */
  ready(): Promise<void>;
  /** Resolves once the broker has stored the event (the ack). */
  publish(event: OutboxEvent): Promise<void>;
  close(): Promise<void>;
}

/**
 * JetStream drops a message whose `Nats-Msg-Id` it saw within this window. A re-publish happens
 * when a relay published but could not mark the row (crash, lost database): the next attempt comes
 * within the relay's backoff cap (10 s) or the next instance's start, far inside two minutes.
 */
export const DUPLICATE_WINDOW_MS = 120_000;
const PUBLISH_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 2_000;

/** `purchase.completed` → `<prefix>.purchase.completed`, `inventory.updated` → `<prefix>.updated`. */
export function subjectOf(prefix: string, type: string): string {
  return `${prefix}.${type.replace(/^inventory\./, '')}`;
}

export function streamConfig(nats: Pick<NatsConfig, 'stream' | 'subjectPrefix'>) {
  return {
    name: nats.stream,
    subjects: [`${nats.subjectPrefix}.>`],
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    storage: StorageType.File,
  };
}

/**
 * Publishes to NATS JetStream. The first connection is made by the relay's `ready()` (so a NATS that
 * is down at start-up delays nothing else); once connected, the client reconnects forever on its own.
 */
export function createNatsPublisher(nats: NatsConfig & { url: string }, log: Logger): EventPublisher {
  let connection: Promise<{ nc: NatsConnection; js: JetStreamClient }> | undefined;
  let connected = false;
  let streamReady = false;
  let closed = false;

  async function open(): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    const nc = await connect({
      servers: nats.url.split(',').map((s) => s.trim()),
      name: 'inventory-outbox-relay',
      timeout: CONNECT_TIMEOUT_MS,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
    });
    connected = true;
    log.info({ server: nc.getServer() }, 'connected to NATS');
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') {
          connected = false;
          log.warn({ server: status.server }, 'NATS connection lost; reconnecting');
        } else if (status.type === 'reconnect') {
          connected = true;
          // A NATS restarted without its data has lost the stream: check it again.
          streamReady = false;
          log.info({ server: status.server }, 'reconnected to NATS');
        }
      }
    })();
    return { nc, js: jetstream(nc) };
  }

  async function ensureStream(nc: NatsConnection): Promise<void> {
    const jsm = await jetstreamManager(nc);
    try {
      const { config } = await jsm.streams.info(nats.stream);
      if (config.duplicate_window < nanos(DUPLICATE_WINDOW_MS)) {
        log.warn(
          { stream: nats.stream, duplicateWindowMs: config.duplicate_window / 1e6 },
          'the stream de-duplicates over a shorter window than the relay may re-publish in',
        );
      }
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      try {
        await jsm.streams.add(streamConfig(nats));
        log.info(
          { stream: nats.stream, subjects: `${nats.subjectPrefix}.>` },
          'created the JetStream stream',
        );
      } catch (addErr) {
        // Another instance may have created it at the same moment.
        await jsm.streams.info(nats.stream).catch(() => Promise.reject(addErr));
      }
    }
    streamReady = true;
  }

  async function current(): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    if (closed) throw new Error('the NATS publisher is closed');
    connection ??= open().catch((err: unknown) => {
      connection = undefined;
      throw err;
    });
    return connection;
  }

  return {
    async ready() {
      const { nc } = await current();
      if (!connected) throw new Error('NATS is not reachable now (reconnecting)');
      if (!streamReady) await ensureStream(nc);
    },
    async publish(event) {
      const { js } = await current();
      try {
        await js.publish(subjectOf(nats.subjectPrefix, event.type), JSON.stringify(event), {
          msgID: event.id,
          timeout: PUBLISH_TIMEOUT_MS,
          expect: { streamName: nats.stream },
        });
      } catch (err) {
        streamReady = false;
        throw err;
      }
    },
    async close() {
      closed = true;
      const nc = (await connection?.catch(() => undefined))?.nc;
      if (!nc || nc.isClosed()) return;
      // Drain flushes what is buffered; a NATS that is down would make it wait, so it is bounded.
      const drained = await Promise.race([
        nc.drain().then(
          () => true,
          () => false,
        ),
        new Promise<false>((resolve) => setTimeout(resolve, 2_000, false).unref()),
      ]);
      if (!drained && !nc.isClosed()) await nc.close();
    },
  };
}
