import type { App } from '@catalogo/kit/app';
import { withTransaction } from '@catalogo/kit/db';
import { AppError, badRequest, notFound } from '@catalogo/kit/errors';
import { checkResourceIdentity, MAX_INT, parseIdParam } from '@catalogo/kit/jsonapi';
import { cursorPage, cursorResult } from '@catalogo/kit/query';
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { ProductResource, ProductsClient } from '../products-client.js';
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
  readErrors,
  SetBody,
  setErrors,
} from './inventory.schemas.js';

const BASE = '/api/inventory';
const tags = ['inventory'];
export const PRODUCT_NOT_FOUND = 'Producto no encontrado';
export const INSUFFICIENT = 'Inventario insuficiente';

export function toInventoryResource(
  productoId: number,
  row: Pick<repo.InventoryRow, 'cantidad' | 'updated_at'>,
): InventoryResourceT {
  return {
    type: INVENTORY_TYPE,
    id: String(productoId),
    attributes: { producto_id: productoId, cantidad: row.cantidad, updated_at: row.updated_at },
    relationships: { product: { data: { type: 'products', id: String(productoId) } } },
    links: { self: `${BASE}/${productoId}` },
  };
}

const single = (resource: InventoryResourceT, product: ProductResource) => ({
  data: resource,
  included: [product],
  links: { self: resource.links.self },
});

export interface InventoryDeps {
  pool: pg.Pool;
  products: ProductsClient;
}

export function inventoryRoutes({ pool, products }: InventoryDeps) {
  async function productOr404(id: number, request: FastifyRequest): Promise<ProductResource> {
    const product = await products.getProduct(id, request.id, request.deadline);
    if (!product) throw notFound(PRODUCT_NOT_FOUND);
    return product;
  }

  /**
   * Every stock change goes the same way: lock the row (creating it at 0 if missing), compute the
   * new quantity from the locked value, write it with its event. Concurrent purchases wait on the
   * same row lock, so no update is lost.
   */
  async function changeStock(productoId: number, causa: repo.Causa, next: (current: number) => number) {
    return withTransaction(pool, async (tx) => {
      const anterior = await repo.lockStock(tx, productoId);
      const cantidad = next(anterior);
      return repo.writeStock(tx, { productoId, anterior, cantidad, causa });
    });
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
        const rows = await repo.listInventory(pool, page.after ?? 0, page.fetch);
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
      async (request) => {
        const id = parseIdParam(request.params.id);
        const [product, row] = await Promise.all([productOr404(id, request), repo.findInventory(pool, id)]);
        // No row: the quantity has been 0 since the product was created, so that is when it last changed.
        const stock = row ?? { cantidad: 0, updated_at: product.attributes.created_at };
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
      async (request) => {
        const id = parseIdParam(request.params.id);
        const product = await productOr404(id, request);
        const { cantidad } = request.body.data.attributes;
        const row = await changeStock(id, 'set', () => cantidad);
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
        const row = await changeStock(id, 'adjustment', (current) => {
          const next = current + delta;
          if (next < 0)
            throw new AppError(
              409,
              'insufficient_stock',
              { detail: INSUFFICIENT },
              { meta: { disponible: current } },
            );
          if (next > MAX_INT) {
            throw new AppError(
              409,
              'stock_overflow',
              { detail: `La cantidad resultante superaría el máximo (${MAX_INT})` },
              { meta: { disponible: current } },
            );
          }
          return next;
        });
        request.log.info({ productoId: id, delta, reason, cantidad: row.cantidad }, 'stock adjusted');
        reply.code(201);
        return single(toInventoryResource(id, row), product);
      },
    );
  };
}
