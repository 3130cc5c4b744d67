import type { App } from '@catalogo/kit/app';
import { withTransaction } from '@catalogo/kit/db';
import { badRequest, notFound } from '@catalogo/kit/errors';
import { checkIfMatch, notModified, strongEtag } from '@catalogo/kit/etag';
import { checkResourceIdentity, parseIdParam } from '@catalogo/kit/jsonapi';
import { idListParam, intParam, linkTo } from '@catalogo/kit/query';
import type pg from 'pg';
import type { ProductCache } from './products.cache.js';
import * as repo from './products.repository.js';
import {
  type CreateAttributes,
  CreateBody,
  createErrors,
  deleteErrors,
  IdParams,
  ListQuery,
  listErrors,
  PRODUCT_TYPE,
  ProductCollection,
  ProductDocument,
  type ProductResourceT,
  readErrors,
  SORT_FIELDS,
  type UpdateAttributes,
  UpdateBody,
  updateErrors,
} from './products.schemas.js';

const BASE = '/api/products';
const tags = ['products'];

export function toProductResource(row: repo.ProductRow): ProductResourceT {
  return {
    type: PRODUCT_TYPE,
    id: String(row.id),
    attributes: {
      nombre: row.nombre,
      // numeric arrives as its exact decimal text; Number() of it prints back the same digits.
      precio: Number(row.precio),
      descripcion: row.descripcion,
      created_at: row.created_at,
      updated_at: row.updated_at,
    },
    links: { self: `${BASE}/${row.id}` },
  };
}

const NOT_FOUND = 'Producto no encontrado';

/**
 * `nombre` is trimmed before the schema judges it, so its 1 – 255 characters are the ones stored: a
 * name padded past 255 by spaces is taken, one of spaces only is refused as empty.
 */
function trimNombre(body: unknown): void {
  const attributes = (body as { data?: { attributes?: unknown } } | null)?.data?.attributes;
  if (typeof attributes !== 'object' || attributes === null) return;
  const nombre = (attributes as { nombre?: unknown }).nombre;
  if (typeof nombre === 'string') (attributes as { nombre: string }).nombre = nombre.trim();
}

/**
 * The schema's multipleOf tolerates a remainder below 1e-9 (19.99 is not an exact binary multiple of
 * 0.01), so 1.000000000001 or 5e-324 pass it; only a number that is exactly its two-decimal text is a price.
 */
function precioOf(precio: number): string {
  const text = precio.toFixed(2);
  if (Number(text) !== precio) {
    throw badRequest({
      detail: 'Debe tener como máximo 2 decimales',
      source: { pointer: '/data/attributes/precio' },
    });
  }
  return text;
}

function changesOf(attributes: UpdateAttributes | CreateAttributes): repo.ProductChanges {
  return {
    ...(attributes.nombre !== undefined ? { nombre: attributes.nombre } : {}),
    ...(attributes.precio !== undefined ? { precio: precioOf(attributes.precio) } : {}),
    ...(attributes.descripcion !== undefined ? { descripcion: attributes.descripcion } : {}),
  };
}

function parseSort(raw: string | undefined): repo.ListCriteria['sort'] {
  if (raw === undefined) return [{ field: 'id', descending: false }];
  const fields = raw.split(',').map((part) => {
    const descending = part.startsWith('-');
    const field = descending ? part.slice(1) : part;
    if (!(SORT_FIELDS as readonly string[]).includes(field)) {
      throw badRequest(
        {
          detail: `No se puede ordenar por '${field}': use ${SORT_FIELDS.join(', ')}`,
          source: { parameter: 'sort' },
        },
        'invalid_sort',
      );
    }
    return { field: field as repo.SortField, descending };
  });
  return fields;
}

export function productsRoutes(pool: pg.Pool, cache: ProductCache) {
  /** The window of the products of `ids` that exist, in id order, and how many exist. */
  async function pageOfIds(
    ids: number[],
    descending: boolean,
    limit: number,
    offset: number,
  ): Promise<repo.ProductPage> {
    const found = await cache.readMany(ids, (missing) => repo.findProducts(pool, missing));
    found.sort((a, b) => (descending ? b.id - a.id : a.id - b.id));
    return { rows: found.slice(offset, offset + limit), total: found.length };
  }

  return async (app: App) => {
    app.post(
      '/products',
      {
        schema: {
          tags,
          summary: 'Crear un producto',
          body: CreateBody,
          response: { 201: ProductDocument, ...createErrors },
        },
        preValidation: async (request) => {
          checkResourceIdentity(request.body, { type: PRODUCT_TYPE, mode: 'create' });
          trimNombre(request.body);
        },
      },
      async (request, reply) => {
        const attributes = request.body.data.attributes;
        const changes = changesOf(attributes);
        const row = await repo.insertProduct(pool, {
          nombre: changes.nombre!,
          precio: changes.precio!,
          descripcion: attributes.descripcion ?? null,
        });
        // Committed: forget the pages before answering, so this client finds the product in them.
        cache.forgetPages();
        const resource = toProductResource(row);
        reply.code(201).header('location', resource.links.self);
        request.log.info({ productId: row.id }, 'product created');
        return { data: resource, links: { self: resource.links.self } };
      },
    );

    app.get(
      '/products/:id',
      {
        schema: {
          tags,
          summary: 'Obtener un producto',
          params: IdParams,
          response: { 200: ProductDocument, ...readErrors },
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const row = await cache.read(id, () => repo.findProduct(pool, id));
        if (!row) throw notFound(NOT_FOUND);
        const resource = toProductResource(row);
        const etag = strongEtag(resource);
        reply.header('etag', etag);
        if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send(null);
        return { data: resource, links: { self: resource.links.self } };
      },
    );

    app.get(
      '/products',
      {
        schema: {
          tags,
          summary: 'Listar productos (paginación, orden y filtros)',
          querystring: ListQuery,
          response: { 200: ProductCollection, ...listErrors },
        },
      },
      async (request) => {
        const query = request.query;
        const number = intParam(query['page[number]'], 'page[number]', 1, 1_000_000, 1);
        const size = intParam(query['page[size]'], 'page[size]', 1, 100, 20);
        const sort = parseSort(query.sort);
        const ids =
          query['filter[id]'] !== undefined ? idListParam(query['filter[id]'], 'filter[id]', 100) : undefined;
        const criteria: repo.ListCriteria = {
          ...(query['filter[nombre]'] !== undefined ? { nombre: query['filter[nombre]'] } : {}),
          ...(ids ? { ids } : {}),
          sort,
          limit: size,
          offset: (number - 1) * size,
        };
        const [first] = sort;
        // Products by id in id order (an order's or a batch of purchases' products): each from the
        // product cache, as a single read is, so a page is no dearer than its products and no staler.
        // Any other page is a whole (the parsed criteria, not the query string, name it: `?sort=id`
        // and `?` share one), forgotten at any change.
        const { rows, total } =
          ids !== undefined && criteria.nombre === undefined && first?.field === 'id'
            ? await pageOfIds(ids, first.descending, size, criteria.offset)
            : await cache.readPage(JSON.stringify(criteria), () => repo.listProducts(pool, criteria));
        const last = Math.max(1, Math.ceil(total / size));
        const page = (n: number) =>
          linkTo(BASE, {
            'filter[id]': query['filter[id]'],
            'filter[nombre]': query['filter[nombre]'],
            sort: query.sort,
            'page[number]': n,
            'page[size]': size,
          });
        return {
          data: rows.map(toProductResource),
          meta: { total },
          links: {
            self: page(number),
            first: page(1),
            last: page(last),
            prev: number > 1 ? page(Math.min(number - 1, last)) : null,
            next: number < last ? page(number + 1) : null,
          },
        };
      },
    );

    app.patch(
      '/products/:id',
      {
        schema: {
          tags,
          summary: 'Actualizar parcialmente un producto',
          params: IdParams,
          body: UpdateBody,
          response: { 200: ProductDocument, ...updateErrors },
        },
        preValidation: async (request) => {
          const { id } = request.params as { id: string };
          parseIdParam(id);
          checkResourceIdentity(request.body, { type: PRODUCT_TYPE, mode: 'update', id });
          trimNombre(request.body);
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        const changes = changesOf(request.body.data.attributes);
        const ifMatch = request.headers['if-match'];
        // With If-Match, the version it names is checked on the locked row, in the update's transaction.
        const row =
          ifMatch === undefined
            ? await repo.updateProduct(pool, id, changes)
            : await withTransaction(pool, async (tx) => {
                const current = await repo.lockProduct(tx, id);
                if (!current) return undefined;
                checkIfMatch(ifMatch, strongEtag(toProductResource(current)));
                return repo.updateProduct(tx, id, changes);
              });
        if (!row) throw notFound(NOT_FOUND);
        // Committed: forget the old version before answering, so this client reads its own write.
        cache.forget(id);
        request.log.info({ productId: id }, 'product updated');
        const resource = toProductResource(row);
        reply.header('etag', strongEtag(resource));
        return { data: resource, links: { self: resource.links.self } };
      },
    );

    app.delete(
      '/products/:id',
      {
        schema: {
          tags,
          summary: 'Eliminar un producto',
          params: IdParams,
          response: { 204: { type: 'null' }, ...deleteErrors },
        },
      },
      async (request, reply) => {
        const id = parseIdParam(request.params.id);
        if (!(await repo.deleteProduct(pool, id))) throw notFound(NOT_FOUND);
        cache.forget(id);
        request.log.info({ productId: id }, 'product deleted');
        return reply.code(204).send(null);
      },
    );
  };
}
