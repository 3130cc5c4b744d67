import type { App } from '@catalogo/kit/app';
import { notFound } from '@catalogo/kit/errors';
import { checkIfMatch, strongEtag } from '@catalogo/kit/etag';
import { checkResourceIdentity, MAX_INT, parseIdParam } from '@catalogo/kit/jsonapi';
import { cursorPage, cursorResult, intParam } from '@catalogo/kit/query';
import type pg from 'pg';
import {
  type IdempotencyDeps,
  keyedCreate,
  parseIdempotencyKey,
  sendStored,
} from '../idempotency/idempotency.service.js';
import { IdempotencyHeaders } from '../purchases/purchases.schemas.js';
import { checkDistinct, lineOutput } from './orders.lines.js';
import { findOrder, listOrders, type OrderRow } from './orders.repository.js';
import {
  CancelOrderBody,
  CreatedOrderDocument,
  CreateOrderBody,
  cancelErrors,
  createErrors,
  IdParams,
  listErrors,
  ORDER_TYPE,
  OrderCollection,
  OrderDocument,
  OrderListQuery,
  type OrderResourceT,
  readErrors,
} from './orders.schemas.js';
import {
  cancelOrder,
  createOrder,
  createOrderSettled,
  ORDER_NOT_FOUND,
  type OrderDeps,
  type OrderDone,
} from './orders.service.js';

const BASE = '/api/orders';
const tags = ['orders'];

export function toOrderResource(row: OrderRow): OrderResourceT {
  return {
    type: ORDER_TYPE,
    id: String(row.id),
    attributes: {
      lineas: row.lineas.map(lineOutput),
      total: Number(row.total),
      estado: row.estado,
      created_at: row.created_at,
      cancelado_at: row.cancelado_at,
    },
    relationships: {
      purchases: { data: row.lineas.map((line) => ({ type: 'purchases', id: String(line.purchase_id) })) },
      reservation: {
        data: row.reserva_id === null ? null : { type: 'reservations', id: String(row.reserva_id) },
      },
    },
    links: { self: `${BASE}/${row.id}` },
  };
}

const createdDocument = ({ order, products }: OrderDone) => {
  const resource = toOrderResource(order);
  return { data: resource, included: products, links: { self: resource.links.self } };
};

export interface OrdersRoutesDeps extends OrderDeps {
  /**
   * Where collections are read: the standby of DATABASE_READ_URL when there is one, else `pool`.
   * They tolerate its lag; nothing else may read there (docs/api.md §6).
   */
  readPool: pg.Pool;
  idempotency: IdempotencyDeps;
}

export function ordersRoutes(deps: OrdersRoutesDeps) {
  return async (app: App) => {
    app.post(
      '/orders',
      {
        schema: {
          tags,
          summary: 'Pedido de varios productos: todas las líneas o ninguna',
          description:
            'Pide todos los productos al servicio de productos en una sola petición y vende cada línea ' +
            'como una compra del pedido. Con Idempotency-Key, un reintento devuelve la respuesta original.',
          headers: IdempotencyHeaders,
          body: CreateOrderBody,
          response: { 201: CreatedOrderDocument, ...createErrors },
        },
        preValidation: async (request) => {
          parseIdempotencyKey(request.headers['idempotency-key']);
          checkResourceIdentity(request.body, { type: ORDER_TYPE, mode: 'create' });
        },
      },
      async (request, reply) => {
        const { lineas } = request.body.data.attributes;
        checkDistinct(lineas);
        const key = parseIdempotencyKey(request.headers['idempotency-key']);
        if (key === undefined) {
          const document = createdDocument(await createOrder(deps, lineas, request));
          request.log.info({ orderId: document.data.id, lineas: lineas.length }, 'order recorded');
          reply.code(201).header('location', document.links.self);
          return document;
        }
        const { response, replayed } = await keyedCreate(deps, request, key, `POST ${BASE}`, (store) =>
          createOrderSettled(deps, lineas, request, (tx, done) => {
            const document = createdDocument(done);
            request.log.info({ orderId: document.data.id, lineas: lineas.length }, 'order recorded');
            return store(tx, { status: 201, location: document.links.self, body: JSON.stringify(document) });
          }),
        );
        return sendStored(reply, response, replayed);
      },
    );

    app.get(
      '/orders/:id',
      {
        schema: {
          tags,
          summary: 'Obtener un pedido',
          params: IdParams,
          response: { 200: OrderDocument, ...readErrors },
        },
      },
      async (request, reply) => {
        const row = await findOrder(deps.pool, parseIdParam(request.params.id));
        if (!row) throw notFound(ORDER_NOT_FOUND);
        const resource = toOrderResource(row);
        reply.header('etag', strongEtag(resource));
        return { data: resource, links: { self: resource.links.self } };
      },
    );

    app.patch(
      '/orders/:id',
      {
        schema: {
          tags,
          summary: 'Cancelar un pedido: las unidades de todas sus líneas vuelven al stock (idempotente)',
          params: IdParams,
          body: CancelOrderBody,
          response: { 200: OrderDocument, ...cancelErrors },
        },
        preValidation: async (request) => {
          const { id } = request.params as { id: string };
          parseIdParam(id);
          checkResourceIdentity(request.body, { type: ORDER_TYPE, mode: 'update', id });
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const row = await cancelOrder(deps, id, (current) =>
          checkIfMatch(request.headers['if-match'], strongEtag(toOrderResource(current))),
        );
        request.log.info({ orderId: id, estado: row.estado }, 'order cancelled');
        const resource = toOrderResource(row);
        reply.header('etag', strongEtag(resource));
        return { data: resource, links: { self: resource.links.self } };
      },
    );

    app.get(
      '/orders',
      {
        schema: {
          tags,
          summary: 'Pedidos, del más reciente al más antiguo',
          querystring: OrderListQuery,
          response: { 200: OrderCollection, ...listErrors },
        },
      },
      async (request) => {
        const page = cursorPage(request.query);
        const filter = request.query['filter[producto_id]'];
        const productoId =
          filter === undefined ? undefined : intParam(filter, 'filter[producto_id]', 1, MAX_INT, 1);
        const rows = await listOrders(deps.readPool, {
          ...(productoId !== undefined ? { productoId } : {}),
          ...(page.after !== undefined ? { before: page.after } : {}),
          limit: page.fetch,
        });
        const result = cursorResult(rows, page, BASE, { 'filter[producto_id]': filter }, (row) => row.id);
        return { data: result.data.map(toOrderResource), links: result.links };
      },
    );
  };
}
