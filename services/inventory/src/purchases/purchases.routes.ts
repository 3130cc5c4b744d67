import type { App } from '@catalogo/kit/app';
import { AppError, notFound } from '@catalogo/kit/errors';
import { checkIfMatch, strongEtag } from '@catalogo/kit/etag';
import { checkResourceIdentity, MAX_INT, parseIdParam } from '@catalogo/kit/jsonapi';
import { cursorPage, cursorResult, intParam } from '@catalogo/kit/query';
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import {
  errorResponse,
  type IdempotencyDeps,
  keyedCreate,
  parseIdempotencyKey,
  type StoredResponse,
  sendStored,
} from '../idempotency/idempotency.service.js';
import { findPurchase, listPurchases, type PurchaseRow } from './purchases.repository.js';
import {
  CancelBody,
  CreateBody,
  CreatedPurchaseDocument,
  cancelErrors,
  createErrors,
  IdempotencyHeaders,
  IdParams,
  ListQuery,
  listErrors,
  PURCHASE_TYPE,
  PurchaseCollection,
  PurchaseDocument,
  type PurchaseResourceT,
  readErrors,
} from './purchases.schemas.js';
import {
  cancelPurchase,
  PURCHASE_NOT_FOUND,
  type PurchaseDeps,
  type PurchaseDone,
  purchase,
  purchaseSettled,
} from './purchases.service.js';

const BASE = '/api/purchases';
const tags = ['purchases'];

export function toPurchaseResource(row: PurchaseRow): PurchaseResourceT {
  return {
    type: PURCHASE_TYPE,
    id: String(row.id),
    attributes: {
      producto_id: row.producto_id,
      cantidad: row.cantidad,
      // Exact decimal text from numeric columns; Number() prints back the same digits.
      precio_unitario: Number(row.precio_unitario),
      total: Number(row.total),
      created_at: row.created_at,
      estado: row.estado,
      cancelada_at: row.cancelada_at,
    },
    relationships: {
      product: { data: { type: 'products', id: String(row.producto_id) } },
      order: { data: row.pedido_id === null ? null : { type: 'orders', id: String(row.pedido_id) } },
    },
    links: { self: `${BASE}/${row.id}` },
  };
}

const createdDocument = ({ purchase, product }: PurchaseDone) => {
  const resource = toPurchaseResource(purchase);
  return { data: resource, included: [product], links: { self: resource.links.self } };
};

export interface PurchasesRoutesDeps extends PurchaseDeps {
  /**
   * Where collections are read: the standby of DATABASE_READ_URL when there is one, else `pool`.
   * They tolerate its lag; nothing else may read there (docs/api.md §6).
   */
  readPool: pg.Pool;
  idempotency: IdempotencyDeps;
}

/**
 * A purchase under an idempotency key: claimed, run and stored once; replayed afterwards. The
 * response is stored in the purchase's own transaction, so a purchase never commits without it.
 */
async function keyedPurchase(
  deps: PurchasesRoutesDeps,
  request: FastifyRequest,
  key: string,
  input: { productoId: number; cantidad: number },
): Promise<{ response: StoredResponse; replayed: boolean }> {
  let purchaseId: number | undefined;
  const result = await keyedCreate(deps, request, key, `POST ${BASE}`, (store) =>
    purchaseSettled(deps, { ...input, requestId: request.id, deadline: request.deadline }, (tx, outcome) => {
      if (outcome instanceof AppError) return store(tx, errorResponse(outcome));
      purchaseId = outcome.purchase.id;
      const document = createdDocument(outcome);
      // Serialised once: these exact bytes are stored, sent now and replayed on every retry.
      return store(tx, { status: 201, location: document.links.self, body: JSON.stringify(document) });
    }),
  );
  if (purchaseId !== undefined) request.log.info({ purchaseId, ...input }, 'purchase recorded');
  return result;
}

export function purchasesRoutes(deps: PurchasesRoutesDeps) {
  return async (app: App) => {
    app.post(
      '/purchases',
      {
        schema: {
          tags,
          summary: 'Comprar: descuenta stock y registra la compra, todo o nada',
          description:
            'Con la cabecera Idempotency-Key, un reintento con la misma clave y el mismo cuerpo devuelve ' +
            'la respuesta original (cabecera Idempotent-Replayed: true) sin volver a comprar.',
          headers: IdempotencyHeaders,
          body: CreateBody,
          response: { 201: CreatedPurchaseDocument, ...createErrors },
        },
        preValidation: async (request) => {
          parseIdempotencyKey(request.headers['idempotency-key']);
          checkResourceIdentity(request.body, { type: PURCHASE_TYPE, mode: 'create' });
        },
      },
      async (request, reply) => {
        const { producto_id: productoId, cantidad } = request.body.data.attributes;
        const key = parseIdempotencyKey(request.headers['idempotency-key']);
        if (key === undefined) {
          const result = await purchase(deps, {
            productoId,
            cantidad,
            requestId: request.id,
            deadline: request.deadline,
          });
          request.log.info({ purchaseId: result.purchase.id, productoId, cantidad }, 'purchase recorded');
          const document = createdDocument(result);
          reply.code(201).header('location', document.links.self);
          return document;
        }

        const { response, replayed } = await keyedPurchase(deps, request, key, { productoId, cantidad });
        return sendStored(reply, response, replayed);
      },
    );

    app.get(
      '/purchases/:id',
      {
        schema: {
          tags,
          summary: 'Obtener una compra',
          params: IdParams,
          response: { 200: PurchaseDocument, ...readErrors },
        },
      },
      async (request, reply) => {
        const row = await findPurchase(deps.pool, parseIdParam(request.params.id));
        if (!row) throw notFound(PURCHASE_NOT_FOUND);
        const resource = toPurchaseResource(row);
        reply.header('etag', strongEtag(resource));
        return { data: resource, links: { self: resource.links.self } };
      },
    );

    app.patch(
      '/purchases/:id',
      {
        schema: {
          tags,
          summary: 'Cancelar una compra: sus unidades vuelven al stock (idempotente)',
          params: IdParams,
          body: CancelBody,
          response: { 200: PurchaseDocument, ...cancelErrors },
        },
        preValidation: async (request) => {
          const { id } = request.params as { id: string };
          parseIdParam(id);
          checkResourceIdentity(request.body, { type: PURCHASE_TYPE, mode: 'update', id });
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const row = await cancelPurchase(deps, id, (current) =>
          checkIfMatch(request.headers['if-match'], strongEtag(toPurchaseResource(current))),
        );
        request.log.info({ purchaseId: id, estado: row.estado }, 'purchase cancelled');
        const resource = toPurchaseResource(row);
        reply.header('etag', strongEtag(resource));
        return { data: resource, links: { self: resource.links.self } };
      },
    );

    app.get(
      '/purchases',
      {
        schema: {
          tags,
          summary: 'Historial de compras, de la más reciente a la más antigua',
          querystring: ListQuery,
          response: { 200: PurchaseCollection, ...listErrors },
        },
      },
      async (request) => {
        const page = cursorPage(request.query);
        const filter = request.query['filter[producto_id]'];
        const productoId =
          filter === undefined ? undefined : intParam(filter, 'filter[producto_id]', 1, MAX_INT, 1);
        const rows = await listPurchases(deps.readPool, {
          ...(productoId !== undefined ? { productoId } : {}),
          ...(page.after !== undefined ? { before: page.after } : {}),
          limit: page.fetch,
        });
        const result = cursorResult(rows, page, BASE, { 'filter[producto_id]': filter }, (row) => row.id);
        return { data: result.data.map(toPurchaseResource), links: result.links };
      },
    );
  };
}
