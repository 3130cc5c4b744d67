import pg from 'pg';
import type { Logger } from 'pino';
import { DELIVERED_CHANNEL } from '../outbox/outbox.repository.js';
import { deliveredAfter } from './events.repository.js';
import { type EventStream, type StreamEvent, type StreamSource, toStreamEvent } from './events.stream.js';

export interface EventHubOptions {
  /** Reads of delivered events (the hub's own small pool). */
  pool: pg.Pool;
  /** For the one listening session. */
  databaseUrl: string;
  log: Logger;
  /** How often the hub reads anyway, in case a notification was missed (its session was lost). */
  pollMs: number;
  /** Events read per statement. */
  pageSize?: number;
}

export interface EventHub {
  /** What a stream that is behind reads from (see EventStream). */
  source: StreamSource;
  /**
   * Adds a stream that has every event up to `stream.last`. `newest` is the highest number delivered
   * when the stream's request looked: an idle hub starts reading after it. A stream behind the hub
   * is first caught up from the database, by itself.
   */
  join(stream: EventStream, newest: number): Promise<void>;
  leave(stream: EventStream): void;
  /** Reads what was delivered since the last read and hands it to every stream. */
  readNew(): Promise<void>;
  close(): Promise<void>;
}

const RELISTEN_MS = 1_000;

/**
 * One reader per instance feeds every stream of the instance: it reads the events delivered after
 * the last one it read (by `delivered_seq`, see the migration that adds it: numbers that grow in
 * the order the relay's marks commit, so reading "after N" never skips one), and offers each to
 * every stream, which filters it in memory. Streams cost no query per event.
 *
 * It reads when the relay announces a mark (PostgreSQL LISTEN/NOTIFY, one listening session per
 * instance whichever instance's relay marked), so events reach every instance within milliseconds
 * of their delivery; and every `pollMs` as well, in case a notification was lost with the listening
 * session. The hub reads nothing while no stream is open.
 */
export function createEventHub(options: EventHubOptions): EventHub {
  const { pool, log } = options;
  const pageSize = options.pageSize ?? 500;
  const streams = new Set<EventStream>();
  /** The number of the last event read and offered; undefined until a first stream joins. */
  let head: number | undefined;
  let reading: Promise<void> | undefined;
  let readAgain = false;
  let closed = false;
  let listener: pg.Client | undefined;
  let relisten: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;

  const read = async (after: number, upTo?: number): Promise<StreamEvent[]> =>
    (await deliveredAfter(pool, after, pageSize, upTo)).map(toStreamEvent);

  async function readAll(): Promise<void> {
    do {
      readAgain = false;
      while (streams.size > 0 && head !== undefined && !closed) {
        const events = await read(head);
        for (const event of events) {
          // A read begun before the hub went idle and woke up again may return what it has passed.
          if (event.seq <= head) continue;
          head = event.seq;
          for (const stream of streams) stream.offer(event);
        }
        if (events.length < pageSize) break;
      }
    } while (readAgain && !closed);
  }

  function readNew(): Promise<void> {
    if (reading) {
      // A notification during a read: read once more after it, for what the read may have missed.
      readAgain = true;
      return reading;
    }
    reading = readAll()
      .catch((err: unknown) =>
        log.warn({ err }, 'could not read the delivered events; retrying at the next poll'),
      )
      .finally(() => {
        reading = undefined;
      });
    return reading;
  }

  function listen(): void {
    if (closed || listener) return;
    const client = new pg.Client({
      connectionString: options.databaseUrl,
      application_name: 'inventory-events',
      connectionTimeoutMillis: 2_000,
      keepAlive: true,
    });
    listener = client;
    const lost = (err?: unknown) => {
      if (listener !== client) return;
      listener = undefined;
      if (err) log.warn({ err }, 'event listener session lost; listening again');
      client.end().catch(() => undefined);
      if (!closed) relisten = setTimeout(listen, RELISTEN_MS).unref();
    };
    client.on('notification', () => void readNew());
    client.on('error', lost);
    client.on('end', () => lost());
    client
      .connect()
      .then(() => client.query(`LISTEN ${DELIVERED_CHANNEL}`))
      // What was delivered while nobody listened.
      .then(() => readNew())
      .catch(lost);
  }

  return {
    source: {
      head: () => head ?? 0,
      read: (after, upTo) => read(after, upTo),
    },
    async join(stream, newest) {
      if (head === undefined || streams.size === 0) head = Math.max(head ?? 0, newest);
      if (!poll) {
        poll = setInterval(() => {
          if (streams.size > 0) void readNew();
        }, options.pollMs).unref();
      }
      listen();
      streams.add(stream);
      await stream.catchUp();
      void readNew();
    },
    leave(stream) {
      streams.delete(stream);
    },
    readNew,
    async close() {
      closed = true;
      clearInterval(poll);
      clearTimeout(relisten);
      for (const stream of streams) stream.close();
      streams.clear();
      await reading;
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => undefined);
    },
  };
}
