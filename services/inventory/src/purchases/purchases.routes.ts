import type { App } from '@catalogo/kit/app';
import { notFound } from '@catalogo/kit/errors';
import { checkResourceIdentity, MAX_INT, parseIdParam } from '@catalogo/kit/jsonapi';
import { cursorPage, cursorResult, intParam } from '@catalogo/kit/query';
import { findPurchase, listPurchases, type PurchaseRow } from './purchases.repository.js';
import {
  CreateBody,
  CreatedPurchaseDocument,
  createErrors,
  IdParams,
  ListQuery,
  listErrors,
  PURCHASE_TYPE,
  PurchaseCollection,
  PurchaseDocument,
  type PurchaseResourceT,
  readErrors,
} from './purchases.schemas.js';
import { type PurchaseDeps, purchase } from './purchases.service.js';

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
    },
    relationships: { product: { data: { type: 'products', id: String(row.producto_id) } } },
    links: { self: `${BASE}/${row.id}` },
  };
}

export function purchasesRoutes(deps: PurchaseDeps) {
  return async (app: App) => {
    app.post(
      '/purchases',
      {
        schema: {
          tags,
          summary: 'Comprar: descuenta stock y registra la compra, todo o nada',
          body: CreateBody,
          response: { 201: CreatedPurchaseDocument, ...createErrors },
        },
        preValidation: async (request) =>
          checkResourceIdentity(request.body, { type: PURCHASE_TYPE, mode: 'create' }),
      },
      async (request, reply) => {
        const { producto_id: productoId, cantidad } = request.body.data.attributes;
        const result = await purchase(deps, { productoId, cantidad }, request.id);
        const resource = toPurchaseResource(result.purchase);
        request.log.info({ purchaseId: result.purchase.id, productoId, cantidad }, 'purchase recorded');
        reply.code(201).header('location', resource.links.self);
        return { data: resource, included: [result.product], links: { self: resource.links.self } };
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
      async (request) => {
        const row = await findPurchase(deps.pool, parseIdParam(request.params.id));
        if (!row) throw notFound('Compra no encontrada');
        const resource = toPurchaseResource(row);
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
        const rows = await listPurchases(deps.pool, {
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
