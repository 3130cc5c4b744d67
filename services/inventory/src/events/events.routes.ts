import type { App } from '@catalogo/kit/app';
import { AppError, badRequest } from '@catalogo/kit/errors';
import { errorResponses, parsePositiveInt } from '@catalogo/kit/jsonapi';
import type pg from 'pg';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Type } from 'typebox';
import type { EventsConfig } from '../config.js';
import type { EventHub } from './events.hub.js';
import { streamBounds } from './events.repository.js';
import { EventStream, type StreamFilter } from './events.stream.js';

/** Every event type the outbox holds (docs/api.md §5 and §7). */
export const EVENT_TYPES = [
  'inventory.updated',
  'purchase.completed',
  'purchase.cancelled',
  'order.completed',
  'order.cancelled',
  'reservation.created',
  'reservation.confirmed',
  'reservation.cancelled',
  'reservation.expired',
] as const;
const KNOWN_TYPES = new Set<string>(EVENT_TYPES);
const LAST_EVENT_ID = /^(0|[1-9][0-9]{0,14})$/;
/** Seconds a client refused for want of room is asked to wait. */
const RETRY_AFTER_SECONDS = '5';

const EventsQuery = Type.Object(
  {
    types: Type.Optional(
      Type.String({ description: 'Tipos de evento separados por comas', example: 'purchase.completed' }),
    ),
    producto_id: Type.Optional(
      Type.String({ description: 'Solo los eventos de este producto', example: '1' }),
    ),
    last_event_id: Type.Optional(
      Type.String({ description: 'Como la cabecera Last-Event-ID, que prevalece si llegan ambas' }),
    ),
  },
  { additionalProperties: false },
);

function parseFilter(query: { types?: string | undefined; producto_id?: string | undefined }): StreamFilter {
  const filter: StreamFilter = {};
  if (query.types !== undefined) {
    const types = query.types.split(',').map((type) => type.trim());
    const unknown = types.filter((type) => !KNOWN_TYPES.has(type));
    if (unknown.length > 0) {
      throw badRequest(
        {
          detail: `Tipo de evento desconocido: '${unknown.join("', '")}'; se admiten: ${EVENT_TYPES.join(', ')}`,
          source: { parameter: 'types' },
        },
        'invalid_parameter',
      );
    }
    filter.types = new Set(types);
  }
  if (query.producto_id !== undefined) {
    const productoId = parsePositiveInt(query.producto_id);
    if (productoId === undefined) {
      throw badRequest(
        {
          detail: 'El producto_id debe ser un entero positivo menor o igual que 2147483647',
          source: { parameter: 'producto_id' },
        },
        'invalid_parameter',
      );
    }
    filter.productoId = productoId;
  }
  return filter;
}

/** The header wins over the query parameter: a browser's EventSource reconnects with the header. */
function parseLastEventId(
  header: string | string[] | undefined,
  param: string | undefined,
): number | undefined {
  const fromHeader = typeof header === 'string' && header.trim() !== '';
  const raw = fromHeader ? header.trim() : param;
  if (raw === undefined) return undefined;
  if (!LAST_EVENT_ID.test(raw)) {
    throw badRequest(
      {
        detail: 'El identificador del último evento debe ser un entero no negativo',
        source: fromHeader ? { header: 'Last-Event-ID' } : { parameter: 'last_event_id' },
      },
      'invalid_parameter',
    );
  }
  return Number(raw);
}

export interface EventsDeps {
  hub: EventHub;
  pool: pg.Pool;
  config: EventsConfig;
  registry: Registry;
  log: Logger;
}

/**
 * `GET /api/events`: the delivered events as Server-Sent Events (docs/api.md §8). Refusals (a bad
 * parameter, no key, no room) are ordinary JSON:API errors; once the stream has begun it is written
 * on the raw response, outside Fastify's reply (`hijack`).
 */
export function eventsRoutes({ hub, pool, config, registry, log }: EventsDeps) {
  const streams = new Set<EventStream>();
  /** Streams counted from the moment their request is accepted, so a burst cannot pass the bound. */
  let admitted = 0;
  new Gauge({
    name: 'event_streams_open',
    help: 'Event streams (GET /api/events) open on this instance',
    registers: [registry],
    collect() {
      this.set(admitted);
    },
  });
  const ended = new Counter({
    name: 'event_streams_closed_total',
    help: 'Event streams ended, by reason: client (it hung up), dropped (it fell behind), shutdown, error',
    labelNames: ['reason'] as const,
    registers: [registry],
  });

  return async (app: App) => {
    // Streams end cleanly before the server waits for its connections to close, or it would wait
    // for clients that never leave.
    app.addHook('preClose', async () => {
      for (const stream of streams) stream.close();
    });

    app.get(
      '/events',
      {
        schema: {
          tags: ['events'],
          summary: 'Eventos en vivo (Server-Sent Events, text/event-stream), reanudables con Last-Event-ID',
          querystring: EventsQuery,
          response: {
            200: Type.String({ description: 'text/event-stream: un mensaje por evento entregado' }),
            ...errorResponses(400, 401, 406, 503),
          },
        },
      },
      async (request, reply) => {
        const filter = parseFilter(request.query);
        const lastEventId = parseLastEventId(request.headers['last-event-id'], request.query.last_event_id);
        if (admitted >= config.maxStreams) {
          throw new AppError(
            503,
            'too_many_streams',
            { detail: `Este servicio ya mantiene ${config.maxStreams} flujos de eventos abiertos` },
            { headers: { 'retry-after': RETRY_AFTER_SECONDS } },
          );
        }
        admitted += 1;
        // From here the request is a stream's: the server's idle timeout no longer applies to its
        // connection (the lookup below is bounded by the pool's own timeouts; the stream by its
        // heartbeat and its bound on unsent bytes), and no request deadline is checked again.
        request.raw.socket.setTimeout(0);
        let stream: EventStream | undefined;
        try {
          const bounds = await streamBounds(pool, lastEventId ?? 0);
          if (lastEventId !== undefined && lastEventId > bounds.issued) {
            throw badRequest(
              {
                detail: `No se ha entregado ningún evento con id ${lastEventId} (el último es ${bounds.issued})`,
                source: request.headers['last-event-id']
                  ? { header: 'Last-Event-ID' }
                  : { parameter: 'last_event_id' },
              },
              'invalid_parameter',
            );
          }
          reply.hijack();
          // The client left during the lookup: there is no stream to hold a place for.
          if (request.raw.socket.destroyed) {
            admitted -= 1;
            ended.inc({ reason: 'client' });
            return reply;
          }
          const current = new EventStream(reply.raw, {
            filter,
            source: hub.source,
            bufferBytes: config.bufferBytes,
            heartbeatMs: config.heartbeatMs,
            start: lastEventId ?? bounds.newest,
            onEnd: (reason) => {
              streams.delete(current);
              hub.leave(current);
              admitted -= 1;
              ended.inc({ reason });
            },
          });
          stream = current;
          streams.add(current);
          current.begin(reply.getHeaders() as Record<string, string>);
          // Events after the one the client has were purged (all of them, when none is retained):
          // say so, then go on from the oldest retained.
          const retainedFrom = bounds.oldest === 0 ? bounds.issued : bounds.oldest;
          if (lastEventId !== undefined && lastEventId > 0 && !bounds.present && lastEventId < retainedFrom) {
            current.notice('gap', {
              last_event_id: String(lastEventId),
              oldest_event_id: String(bounds.oldest),
            });
          }
          await hub.join(current, bounds.newest);
        } catch (err) {
          if (!stream) {
            admitted -= 1;
            throw err;
          }
          // The stream has begun: end it; the client resumes with Last-Event-ID.
          log.warn({ err }, 'event stream failed; closing it');
          stream.close('error');
        }
        return reply;
      },
    );
  };
}
