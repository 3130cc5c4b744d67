import {
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  PubHeaders,
  StorageType,
} from '@nats-io/jetstream';
import { connect, createInbox, headers, type Msg, type NatsConnection, nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { NatsConfig } from '../config.js';
import type { OutboxEvent } from './outbox.repository.js';

/** Where the relay delivers events besides the log. */
export interface EventPublisher {
  /** Resolves when the broker can take events now (connected, stream present); rejects otherwise. */
  ready(): Promise<void>;
  /**
   * Sends `events` in this order, all in flight together, and resolves once each is acknowledged or
   * has failed: per event, `undefined` when the broker holds it (stored now, or already held: a
   * re-publish), else why not. Each event after the first is stored only right after the one before
   * it in the list — otherwise it is refused with an OutOfOrderError — so whatever the broker stored
   * of the list, it stored in list order, with no event left out before it.
   */
  publishInOrder(events: readonly OutboxEvent[]): Promise<(Error | undefined)[]>;
  close(): Promise<void>;
}

/**
 * The broker refused an event because the last event it stored is not the one before it in the
 * list: an earlier event of the list was lost, or it was already held (a re-publish after a crash),
 * or something else was published in between. Nothing was stored; the relay carries on from there.
 */
export class OutOfOrderError extends Error {}

/**
 * JetStream drops a message whose `Nats-Msg-Id` it saw within this window. A re-publish happens
 * when a relay published but could not mark the row (crash, lost database): the next attempt comes
 * within the relay's backoff cap (10 s) or the next instance's start, far inside two minutes.
 */
export const DUPLICATE_WINDOW_MS = 120_000;
const PUBLISH_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 2_000;
/** JetStream's error code for `Nats-Expected-Last-Msg-Id` not matching the stream's last message. */
const WRONG_LAST_MSG_ID = 10070;

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

/** The outcome of one publish, from JetStream's answer on its reply subject. */
function outcomeOf(answer: Msg): Error | undefined {
  // No stream listens on the subject: the server answers the reply with a 503 status and no body.
  if (answer.headers?.code === 503) return new Error("no JetStream stream stores the event's subject");
  let ack: { error?: { err_code?: number; description?: string } };
  try {
    ack = answer.json();
  } catch {
    return new Error('unreadable JetStream acknowledgement');
  }
  if (!ack.error) return undefined;
  const reason = `JetStream refused the event: ${ack.error.description ?? 'no reason given'}`;
  return ack.error.err_code === WRONG_LAST_MSG_ID ? new OutOfOrderError(reason) : new Error(reason);
}

interface Connection {
  nc: NatsConnection;
  /** The prefix of the reply subjects that JetStream's acknowledgements come back on. */
  inbox: string;
}

/**
 * Publishes to NATS JetStream. The first connection is made by the relay's `ready()` (so a NATS that
 * is down at start-up delays nothing else); once connected, the client reconnects forever on its own.
 */
export function createNatsPublisher(nats: NatsConfig & { url: string }, log: Logger): EventPublisher {
  let connection: Promise<Connection> | undefined;
  let connected = false;
  let streamReady = false;
  let closed = false;
  /** Publishes awaiting their acknowledgement, by reply subject. */
  const awaiting = new Map<string, (outcome: Error | undefined) => void>();
  let sent = 0;

  async function open(): Promise<Connection> {
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
          // Their fate is unknown now: failed at once rather than at the timeout. Whatever of them
          // was stored is dropped as a duplicate when the relay publishes it again.
          const lost = new Error('NATS connection lost before the acknowledgement');
          for (const settle of [...awaiting.values()]) settle(lost);
        } else if (status.type === 'reconnect') {
          connected = true;
          // A NATS restarted without its data has lost the stream: check it again.
          streamReady = false;
          log.info({ server: status.server }, 'reconnected to NATS');
        }
      }
    })();
    // One subscription takes every acknowledgement (the client renews it after a reconnection). A
    // request per publish would do the same, but costs a timer and two errors' stack traces each: a
    // quarter of what the relay could deliver.
    const inbox = createInbox();
    nc.subscribe(`${inbox}.*`, {
      callback: (_err, answer) => awaiting.get(answer.subject)?.(outcomeOf(answer)),
    });
    return { nc, inbox };
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

  async function current(): Promise<Connection> {
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
    async publishInOrder(events) {
      const { nc, inbox } = await current();
      const replies: string[] = [];
      const outcomes = events.map(
        (event, index) =>
          new Promise<Error | undefined>((resolve) => {
            sent += 1;
            const reply = `${inbox}.${sent}`;
            replies.push(reply);
            awaiting.set(reply, (outcome) => {
              awaiting.delete(reply);
              resolve(outcome);
            });
            const h = headers();
            h.set(PubHeaders.MsgIdHdr, event.id);
            h.set(PubHeaders.ExpectedStreamHdr, nats.stream);
            // Publishes in flight together keep their order on the connection, but one can be lost
            // while later ones are stored: the connection drops with it in the socket, and the
            // client sends the ones it still buffered after reconnecting. Each event names the one
            // before it as the stream's last message, so JetStream refuses an event whose
            // predecessor it does not hold and a product's events can never be stored out of order.
            if (index > 0) h.set(PubHeaders.ExpectedLastMsgIdHdr, events[index - 1]!.id);
            try {
              nc.publish(subjectOf(nats.subjectPrefix, event.type), JSON.stringify(event), {
                reply,
                headers: h,
              });
            } catch (err) {
              awaiting.get(reply)?.(err instanceof Error ? err : new Error(String(err)));
            }
          }),
      );
      // One timer for the whole list: what is not acknowledged by then counts as failed (it may
      // still be stored; a re-publish is then dropped as a duplicate).
      const timer = setTimeout(() => {
        const late = new Error(`no JetStream acknowledgement within ${PUBLISH_TIMEOUT_MS} ms`);
        for (const reply of replies) awaiting.get(reply)?.(late);
      }, PUBLISH_TIMEOUT_MS);
      const settled = await Promise.all(outcomes);
      clearTimeout(timer);
      // A refusal other than the chain's may mean the stream is gone: check it before the next batch.
      if (settled.some((outcome) => outcome && !(outcome instanceof OutOfOrderError))) streamReady = false;
      return settled;
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
