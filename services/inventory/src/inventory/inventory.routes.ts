import type { App } from '@catalogo/kit/app';
import { withTransaction } from '@catalogo/kit/db';
import { badRequest, notFound } from '@catalogo/kit/errors';
import { checkIfMatch, notModified, strongEtag } from '@catalogo/kit/etag';
import { checkResourceIdentity, parseIdParam } from '@catalogo/kit/jsonapi';
import { cursorPage, cursorResult } from '@catalogo/kit/query';
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { ProductResource, ProductsClient } from '../products-client.js';
import type { StockChanges } from '../stock/stock.metrics.js';
import { listMovements, lockStock, type MovementRow } from '../stock/stock.repository.js';
import { adjustStock, setStock } from '../stock/stock.service.js';
import * as repo from './inventory.repository.js';
import {
  ADJUSTMENT_TYPE,
  AdjustmentBody,
  adjustErrors,
  IdParams,
  INVENTORY_TYPE,
  InventoryCollection,
  InventoryDocument,
  InventoryQuery,
  type InventoryResourceT,
  listErrors,
  MOVEMENT_TYPE,
  MovementCollection,
  MovementQuery,
  type MovementResourceT,
  movementErrors,
  readErrors,
  SetBody,
  setErrors,
} from './inventory.schemas.js';

const BASE = '/api/inventory';
const tags = ['inventory'];
export const PRODUCT_NOT_FOUND = 'Producto no encontrado';

export function toInventoryResource(
  productoId: number,
  row: Pick<repo.InventoryRow, 'cantidad' | 'reservado' | 'updated_at'>,
): InventoryResourceT {
  return {
    type: INVENTORY_TYPE,
    id: String(productoId),
    attributes: {
      producto_id: productoId,
      cantidad: row.cantidad,
      reservado: row.reservado,
      updated_at: row.updated_at,
    },
    relationships: { product: { data: { type: 'products', id: String(productoId) } } },
    links: { self: `${BASE}/${productoId}` },
  };
}

export function toMovementResource(row: MovementRow): MovementResourceT {
  return {
    type: MOVEMENT_TYPE,
    id: row.id,
    attributes: {
      producto_id: row.producto_id,
      causa: row.causa,
      delta: row.delta,
      delta_reservado: row.delta_reservado,
      cantidad: row.cantidad,
      reservado: row.reservado,
      reason: row.reason,
      created_at: row.created_at,
    },
    relationships: {
      source: {
        data:
          row.source_type === null || row.source_id === null
            ? null
            : { type: row.source_type, id: String(row.source_id) },
      },
    },
  };
}

/**
 * The inventory document's entity tag: its stock's version (the latest movement) and the version of
 * the product it includes, so it changes with every stock change and every change of the product.
 */
export const inventoryEtag = (productoId: number, version: string, product: ProductResource) =>
  strongEtag(`inventory:${productoId}:${version}:${String(product.attributes.updated_at)}`);

const single = (resource: InventoryResourceT, product: ProductResource) => ({
  data: resource,
  included: [product],
  links: { self: resource.links.self },
});

export interface InventoryDeps {
  pool: pg.Pool;
  /**
   * Where collections are read: the standby of DATABASE_READ_URL when there is one, else `pool`.
   * They tolerate its lag; nothing else may read there (docs/api.md §6).
   */
  readPool: pg.Pool;
  products: ProductsClient;
  stockChanges: StockChanges;
}

export function inventoryRoutes({ pool, readPool, products, stockChanges }: InventoryDeps) {
  async function productOr404(id: number, request: FastifyRequest): Promise<ProductResource> {
    const product = await products.getProduct(id, request.id, request.deadline);
    if (!product) throw notFound(PRODUCT_NOT_FOUND);
    return product;
  }

  /**
   * A stock change (stock.service.ts) in its own transaction, answering the row as it left it and its
   * entity tag. With If-Match, the version it names is checked on the locked row before the change.
   * Its one movement is counted once committed.
   */
  async function changeStock(
    productoId: number,
    product: ProductResource,
    ifMatch: string | string[] | undefined,
    causa: 'set' | 'adjustment',
    change: (tx: pg.PoolClient) => Promise<unknown>,
  ) {
    const changed = await withTransaction(pool, async (tx) => {
      if (ifMatch !== undefined) {
        await lockStock(tx, productoId);
        checkIfMatch(ifMatch, inventoryEtag(productoId, await repo.stockVersion(tx, productoId), product));
      }
      await change(tx);
      const row = (await repo.findInventory(tx, productoId))!;
      return { row, etag: inventoryEtag(productoId, await repo.stockVersion(tx, productoId), product) };
    });
    stockChanges.inc({ causa });
    return changed;
  }

  return async (app: App) => {
    app.get(
      '/inventory',
      {
        schema: {
          tags,
          summary: 'Listar el inventario existente (por producto_id, paginado por cursor)',
          querystring: InventoryQuery,
          response: { 200: InventoryCollection, ...listErrors },
        },
      },
      async (request) => {
        const page = cursorPage(request.query);
        const rows = await repo.listInventory(readPool, page.after ?? 0, page.fetch);
        const result = cursorResult(rows, page, BASE, {}, (row) => row.producto_id);
        return {
          data: result.data.map((row) => toInventoryResource(row.producto_id, row)),
          links: result.links,
        };
      },
    );

    app.get(
      '/inventory/:id',
      {
        schema: {
          tags,
          summary: 'Stock de un producto (0 si no tiene fila de inventario)',
          params: IdParams,
          response: { 200: InventoryDocument, ...readErrors },
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const [product, row, version] = await Promise.all([
          productOr404(id, request),
          repo.findInventory(pool, id),
          repo.stockVersion(pool, id),
        ]);
        const etag = inventoryEtag(id, version, product);
        reply.header('etag', etag);
        if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send(null);
        // No row: the quantity has been 0 since the product was created, so that is when it last changed.
        const stock = row ?? { cantidad: 0, reservado: 0, updated_at: product.attributes.created_at };
        return single(toInventoryResource(id, stock), product);
      },
    );

    app.patch(
      '/inventory/:id',
      {
        schema: {
          tags,
          summary: 'Fijar la cantidad absoluta (crea la fila si falta)',
          params: IdParams,
          body: SetBody,
          response: { 200: InventoryDocument, ...setErrors },
        },
        preValidation: async (request) => {
          const { id } = request.params as { id: string };
          parseIdParam(id);
          checkResourceIdentity(request.body, { type: INVENTORY_TYPE, mode: 'update', id });
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const product = await productOr404(id, request);
        const { cantidad } = request.body.data.attributes;
        const { row, etag } = await changeStock(id, product, request.headers['if-match'], 'set', (tx) =>
          setStock(tx, id, cantidad),
        );
        reply.header('etag', etag);
        request.log.info({ productoId: id, cantidad }, 'stock set');
        return single(toInventoryResource(id, row), product);
      },
    );

    app.post(
      '/inventory/:id/adjustments',
      {
        schema: {
          tags,
          summary: 'Ajuste relativo y atómico del stock (delta positivo o negativo)',
          params: IdParams,
          body: AdjustmentBody,
          response: { 201: InventoryDocument, ...adjustErrors },
        },
        preValidation: async (request) => {
          parseIdParam((request.params as { id: string }).id);
          checkResourceIdentity(request.body, { type: ADJUSTMENT_TYPE, mode: 'create' });
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const { delta, reason } = request.body.data.attributes;
        if (delta === 0) {
          throw badRequest({
            detail: 'El delta no puede ser 0',
            source: { pointer: '/data/attributes/delta' },
          });
        }
        const product = await productOr404(id, request);
        const { row, etag } = await changeStock(id, product, undefined, 'adjustment', (tx) =>
          adjustStock(tx, id, delta, reason),
        );
        reply.header('etag', etag);
        request.log.info({ productoId: id, delta, reason, cantidad: row.cantidad }, 'stock adjusted');
        reply.code(201);
        return single(toInventoryResource(id, row), product);
      },
    );

    app.get(
      '/inventory/:id/movements',
      {
        schema: {
          tags,
          summary: 'Libro de stock de un producto, del movimiento más reciente al más antiguo',
          params: IdParams,
          querystring: MovementQuery,
          response: { 200: MovementCollection, ...movementErrors },
        },
      },
      async (request) => {
        const id = parseIdParam(request.params.id);
        const page = cursorPage(request.query);
        const rows = await listMovements(readPool, {
          productoId: id,
          ...(page.after !== undefined ? { before: page.after } : {}),
          limit: page.fetch,
        });
        // A product with movements had a stock row, so it existed; only an empty page asks Products
        // (past a cursor too: a page after any cursor of an unknown product is a 404, not an empty list).
        if (rows.length === 0) await productOr404(id, request);
        const result = cursorResult(rows, page, `${BASE}/${id}/movements`, {}, (row) => Number(row.id));
        return { data: result.data.map(toMovementResource), links: result.links };
      },
    );
  };
}
