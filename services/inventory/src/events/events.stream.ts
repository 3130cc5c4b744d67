import type { ServerResponse } from 'node:http';
import type { DeliveredEvent } from './events.repository.js';

/** A delivered event ready to send: its SSE frame, serialised once for every stream. */
export interface StreamEvent {
  seq: number;
  type: string;
  /** The products the event concerns: its own, or those of its `lineas`. */
  productos: readonly number[];
  frame: string;
}

/** What one client asked for: `types` and `producto_id` (each absent: everything). */
export interface StreamFilter {
  types?: ReadonlySet<string>;
  productoId?: number;
}

export function toStreamEvent(event: DeliveredEvent): StreamEvent {
  const { envelope } = event;
  const lineas = envelope.data.lineas;
  const productos =
    event.productoId !== null
      ? [event.productoId]
      : Array.isArray(lineas)
        ? lineas.map((linea: { producto_id?: unknown }) => Number(linea.producto_id))
        : [];
  return {
    seq: event.seq,
    type: envelope.type,
    productos,
    // The envelope is JSON on one line (JSON.stringify escapes every newline), as `data:` needs.
    frame: `id: ${event.seq}\nevent: ${envelope.type}\ndata: ${JSON.stringify(envelope)}\n\n`,
  };
}

export type StreamEnd = 'client' | 'dropped' | 'shutdown' | 'error';

/** Where a stream that is behind reads from: the events the hub has read so far, from the database. */
export interface StreamSource {
  /** The number of the last event the hub has offered to its streams. */
  head(): number;
  read(after: number, upTo: number): Promise<StreamEvent[]>;
}

export interface EventStreamOptions {
  filter: StreamFilter;
  source: StreamSource;
  /** Bytes a stream may hold unsent before it stops taking live events and reads on its own. */
  bufferBytes: number;
  /** A comment every this often; a stream behind that takes nothing for twice this is dropped. */
  heartbeatMs: number;
  /** The number of the last event the client has (0: from the oldest retained). */
  start: number;
  /** Called once, however the stream ends. */
  onEnd: (reason: StreamEnd) => void;
}

const HEARTBEAT = ': keep-alive\n\n';

/**
 * One client's Server-Sent Events, written on the raw response: SSE framing is three lines per
 * event, and what needs care here — what a client may hold unsent, and what happens past it — is
 * ours to decide whatever writes the frames.
 *
 * A stream is live (the hub offers it each event as it is read) or behind (it reads the events
 * itself from the database, a page at a time, each page written once the client has taken the one
 * before). It starts behind, to catch up from `Last-Event-ID`; it falls behind when a live event
 * would take its unsent bytes past `bufferBytes`; it is live again once it has reached the hub's
 * last event. So a slow client misses nothing and costs at most `bufferBytes` and one page, never
 * slows the other streams nor the reader that feeds them; and a client that takes nothing at all
 * for twice the heartbeat interval while behind is dropped (its connection destroyed): a reconnect
 * with `Last-Event-ID` resumes where it was.
 */
export class EventStream {
  /** The number of the last event passed to the client, or passed over by its filter. */
  last: number;
  private behind = true;
  private heartbeat: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: EventStreamOptions,
  ) {
    this.last = options.start;
    res.on('close', () => this.finish('client'));
  }

  /** Sends the status and headers, and a first comment so that proxies and clients see it open. */
  begin(headers: Record<string, string>): void {
    this.res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // Proxies such as nginx otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    this.res.write(': connected\n\n');
    this.heartbeat = setInterval(() => {
      // A client that has not taken what it was sent needs no sign of life.
      if (this.res.writableLength <= this.res.writableHighWaterMark) this.res.write(HEARTBEAT);
    }, this.options.heartbeatMs);
  }

  /** A control message the client's EventSource sees as event `type` (no `id`: its place stays). */
  notice(type: string, data: Record<string, unknown>): void {
    if (!this.ended) this.res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** A live event, in delivery order. */
  offer(event: StreamEvent): void {
    if (this.ended || this.behind || event.seq <= this.last) return;
    if (!this.accepts(event)) {
      this.last = event.seq;
      return;
    }
    if (this.res.writableLength + event.frame.length > this.options.bufferBytes) {
      void this.catchUp();
      return;
    }
    this.last = event.seq;
    this.res.write(event.frame);
  }

  /** Reads and sends, at the client's pace, what the hub has read past `last`; then goes live. */
  async catchUp(): Promise<void> {
    this.behind = true;
    const { source } = this.options;
    try {
      for (;;) {
        if (this.res.writableLength > this.res.writableHighWaterMark && !(await this.drained())) {
          this.finish('dropped');
        }
        if (this.ended) return;
        const head = source.head();
        // Nothing is awaited between this check and going live: the hub offers each event right
        // after it moves its head to it, so every event past `head` is yet to be offered.
        if (this.last >= head) break;
        const page = await source.read(this.last, head);
        if (this.ended) return;
        // None left up to `head`: the rest were purged meanwhile.
        if (page.length === 0) this.last = head;
        for (const event of page) {
          this.last = event.seq;
          if (this.accepts(event)) this.res.write(event.frame);
        }
      }
      this.behind = false;
    } catch {
      // The database failed the read: the client resumes with Last-Event-ID when it reconnects.
      this.finish('error');
    }
  }

  /** Ends the stream cleanly (the client sees the response end, and may reconnect elsewhere). */
  close(reason: 'shutdown' | 'error' = 'shutdown'): void {
    this.finish(reason);
  }

  private accepts(event: StreamEvent): boolean {
    const { types, productoId } = this.options.filter;
    if (types && !types.has(event.type)) return false;
    return productoId === undefined || event.productos.includes(productoId);
  }

  /** True once the client has taken what it was sent; false if it took nothing for too long. */
  private drained(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (taken: boolean) => {
        clearTimeout(timer);
        this.res.off('drain', onDrain);
        this.res.off('close', onClose);
        resolve(taken);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), 2 * this.options.heartbeatMs);
      this.res.on('drain', onDrain);
      this.res.on('close', onClose);
    });
  }

  private finish(reason: StreamEnd): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    if (reason === 'dropped') this.res.destroy();
    else if (reason !== 'client') this.res.end();
    this.options.onEnd(reason);
  }
}
