import type { App } from '@catalogo/kit/app';
import { AppError, notFound } from '@catalogo/kit/errors';
import { checkIfMatch, strongEtag } from '@catalogo/kit/etag';
import { checkResourceIdentity, parseIdParam } from '@catalogo/kit/jsonapi';
import { cursorPage, cursorResult } from '@catalogo/kit/query';
import {
  type IdempotencyDeps,
  keyedCreate,
  parseIdempotencyKey,
  sendStored,
} from '../idempotency/idempotency.service.js';
import { checkDistinct, lineOutput } from '../orders/orders.lines.js';
import { toOrderResource } from '../orders/orders.routes.js';
import { IdempotencyHeaders } from '../purchases/purchases.schemas.js';
import { findReservation, listReservations, type ReservationRow } from './reservations.repository.js';
import {
  CreateReservationBody,
  createErrors,
  DEFAULT_EXPIRA_EN,
  ESTADOS,
  type Estado,
  IdParams,
  listErrors,
  RESERVATION_TYPE,
  ReservationCollection,
  ReservationDocument,
  ReservationListQuery,
  type ReservationResourceT,
  readErrors,
  UpdateReservationBody,
  updateErrors,
} from './reservations.schemas.js';
import {
  cancelReservation,
  confirmReservation,
  createReservation,
  RESERVATION_NOT_FOUND,
  type ReservationDeps,
  type ReservationMade,
} from './reservations.service.js';

const BASE = '/api/reservations';
const tags = ['reservations'];

export function toReservationResource(row: ReservationRow): ReservationResourceT {
  return {
    type: RESERVATION_TYPE,
    id: String(row.id),
    attributes: {
      lineas: row.lineas.map(lineOutput),
      total: Number(row.total),
      estado: row.estado,
      expira_at: row.expira_at,
      created_at: row.created_at,
    },
    relationships: {
      order: { data: row.pedido_id === null ? null : { type: 'orders', id: String(row.pedido_id) } },
    },
    links: { self: `${BASE}/${row.id}` },
  };
}

const document = (row: ReservationRow, included?: object[]) => {
  const resource = toReservationResource(row);
  return { data: resource, ...(included ? { included } : {}), links: { self: resource.links.self } };
};

export interface ReservationsRoutesDeps extends ReservationDeps {
  idempotency: IdempotencyDeps;
}

export function reservationsRoutes(deps: ReservationsRoutesDeps) {
  return async (app: App) => {
    app.post(
      '/reservations',
      {
        schema: {
          tags,
          summary: 'Reservar: las unidades de todas las líneas pasan de cantidad a reservado, o ninguna',
          description:
            'Los precios se fijan al reservar. La reserva expira a los expira_en segundos si no se confirma.',
          headers: IdempotencyHeaders,
          body: CreateReservationBody,
          response: { 201: ReservationDocument, ...createErrors },
        },
        preValidation: async (request) => {
          parseIdempotencyKey(request.headers['idempotency-key']);
          checkResourceIdentity(request.body, { type: RESERVATION_TYPE, mode: 'create' });
        },
      },
      async (request, reply) => {
        const { lineas, expira_en } = request.body.data.attributes;
        checkDistinct(lineas);
        const input = { lineas, expiraEn: expira_en ?? DEFAULT_EXPIRA_EN };
        const made = (done: ReservationMade) => {
          request.log.info({ reservationId: done.reservation.id, lineas: lineas.length }, 'reservation made');
          return document(done.reservation, done.products);
        };
        const key = parseIdempotencyKey(request.headers['idempotency-key']);
        if (key === undefined) {
          const body = await createReservation(deps, input, request, async (_tx, done) => made(done));
          reply.code(201).header('location', body.links.self);
          return body;
        }
        const { response, replayed } = await keyedCreate(deps, request, key, `POST ${BASE}`, (store) =>
          createReservation(deps, input, request, (tx, done) => {
            const body = made(done);
            return store(tx, { status: 201, location: body.links.self, body: JSON.stringify(body) });
          }),
        );
        return sendStored(reply, response, replayed);
      },
    );

    app.get(
      '/reservations/:id',
      {
        schema: {
          tags,
          summary: 'Obtener una reserva',
          params: IdParams,
          response: { 200: ReservationDocument, ...readErrors },
        },
      },
      async (request, reply) => {
        const row = await findReservation(deps.pool, parseIdParam(request.params.id));
        if (!row) throw notFound(RESERVATION_NOT_FOUND);
        const body = document(row);
        reply.header('etag', strongEtag(body.data));
        return body;
      },
    );

    app.get(
      '/reservations',
      {
        schema: {
          tags,
          summary: 'Reservas, de la más reciente a la más antigua',
          querystring: ReservationListQuery,
          response: { 200: ReservationCollection, ...listErrors },
        },
      },
      async (request) => {
        const page = cursorPage(request.query);
        const filter = request.query['filter[estado]'];
        if (filter !== undefined && !(ESTADOS as readonly string[]).includes(filter)) {
          throw new AppError(400, 'invalid_parameter', {
            detail: `Debe ser uno de: ${ESTADOS.join(', ')}`,
            source: { parameter: 'filter[estado]' },
          });
        }
        const rows = await listReservations(deps.pool, {
          ...(filter !== undefined ? { estado: filter as Estado } : {}),
          ...(page.after !== undefined ? { before: page.after } : {}),
          limit: page.fetch,
        });
        const result = cursorResult(rows, page, BASE, { 'filter[estado]': filter }, (row) => row.id);
        return { data: result.data.map(toReservationResource), links: result.links };
      },
    );

    app.patch(
      '/reservations/:id',
      {
        schema: {
          tags,
          summary: 'Confirmar (vender lo reservado a los precios fijados) o cancelar una reserva',
          description:
            'Confirmar no consulta el servicio de productos. Confirmar una reserva confirmada, o cancelar ' +
            'una cancelada, responde 200 sin cambiar nada.',
          params: IdParams,
          body: UpdateReservationBody,
          response: { 200: ReservationDocument, ...updateErrors },
        },
        preValidation: async (request) => {
          const { id } = request.params as { id: string };
          parseIdParam(id);
          checkResourceIdentity(request.body, { type: RESERVATION_TYPE, mode: 'update', id });
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const check = (current: ReservationRow) =>
          checkIfMatch(request.headers['if-match'], strongEtag(toReservationResource(current)));
        let body: ReturnType<typeof document>;
        if (request.body.data.attributes.estado === 'confirmada') {
          const { reservation, order } = await confirmReservation(deps, id, check);
          request.log.info({ reservationId: id, orderId: order.id }, 'reservation confirmed');
          body = document(reservation, [toOrderResource(order)]);
        } else {
          const reservation = await cancelReservation(deps, id, check);
          request.log.info({ reservationId: id, estado: reservation.estado }, 'reservation cancelled');
          body = document(reservation);
        }
        reply.header('etag', strongEtag(body.data));
        return body;
      },
    );
  };
}
