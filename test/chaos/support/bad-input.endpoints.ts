/** Every endpoint of both services (docs/api.md §2 and §3): its valid request and what can break it. */
import { MAX_INT } from '@catalogo/kit/jsonapi';
import fc from 'fast-check';
import { type Fault, fault, type Json, Raw, setAttributes, updateIn } from './bad-input.model.js';
import {
  badIdList,
  badInteger,
  badIntText,
  badPrecio,
  badSort,
  badString,
  deep,
  longString,
  missingId,
  printable,
  withNul,
} from './bad-input.values.js';

export interface Seeds {
  /** Products with a stock row, and that stock. */
  stocked: { id: number; stock: number }[];
  /** A product without an inventory row. */
  unstocked: number;
  /** A product priced 99999999.99 with stock: buying two of it is a 422. */
  dear: number;
  /** An existing purchase. */
  purchase: number;
  /** An order of one line of `stocked[0]`, and the purchase that is its line. */
  order: number;
  orderLine: number;
  /** A reservation still active, and one confirmed. */
  reservation: number;
  confirmedReservation: number;
}

export interface AttributeSpec {
  name: string;
  required: boolean;
  decoy: fc.Arbitrary<Json>;
  invalid: fc.Arbitrary<Json>;
}

export interface QuerySpec {
  name: string;
  /** Free text: any decodable value is valid, only NUL and length can break it. */
  text?: boolean;
  valid: fc.Arbitrary<string>;
  invalid: fc.Arbitrary<string>;
}

export interface Endpoint {
  name: string;
  service: 'products' | 'inventory';
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  route: (segment: string) => string;
  /** The existing ids the valid request may name (endpoints with an id in the path). */
  ids?: (seeds: Seeds) => number[];
  /** The valid body for the id the request starts from. */
  body?: (id: number, seeds: Seeds) => Json;
  /** Create or update, for the identity faults (403 for a client id, 409 for a mismatch). */
  mode?: 'create' | 'update';
  attributes?: AttributeSpec[];
  query?: QuerySpec[];
  /** Well-formed requests that the service must refuse for what they ask (stock, prices, ids). */
  business?: (seeds: Seeds) => fc.Arbitrary<Fault>;
  /** Headers of the endpoint's own that can be malformed. */
  headers?: fc.Arbitrary<Fault>;
  /** Odd values of the endpoint's own that need not be refused (applied before the faults). */
  noise?: fc.Arbitrary<Fault>;
}

const pageSize: QuerySpec = {
  name: 'page[size]',
  valid: fc.integer({ min: 1, max: 100 }).map(String),
  invalid: badIntText(1, 100),
};
const pageAfter: QuerySpec = {
  name: 'page[after]',
  valid: fc.integer({ min: 1, max: MAX_INT }).map(String),
  invalid: badIntText(1, MAX_INT),
};

/** 1–255 visible ASCII characters, one key (docs/api.md §3): anything else is a 400. */
const badIdempotencyKey = fc
  .oneof(
    fc.constantFrom<string | string[]>('', ' ', 'a b', '\t', 'clave-ñ', 'x'.repeat(256), ['k1', 'k2']),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((k) => !/^[\x21-\x7e]+$/.test(k)),
  )
  .map((key) =>
    fault(`Idempotency-Key ${JSON.stringify(key).slice(0, 40)}`, (d) => {
      d.headers['idempotency-key'] = key;
    }),
  );

/**
 * An If-Match that names no current version (§7): a 412, nothing written. Never `*`, which any
 * version matches; an empty list of tags matches none.
 */
const staleIfMatch = fc
  .oneof(
    fc.constantFrom<string | string[]>('""', '"x"', 'W/"x"', '"1", "2"', '', ',', 'garbage', ['"a"', '"b"']),
    printable(60),
  )
  .filter((value) => (Array.isArray(value) ? value.join(',') : value).trim() !== '*')
  .map((value) =>
    fault(`If-Match ${JSON.stringify(value).slice(0, 40)}`, (d) => {
      d.headers['if-match'] = value;
    }),
  );

/** An If-None-Match naming no current version: a GET answers as without it (noise, not a fault). */
const otherIfNoneMatch = fc
  .oneof(fc.constantFrom('"x"', 'W/"x"', '', '"a", W/"b"', 'garbage'), printable(60))
  .filter((value) => value.trim() !== '*')
  .map((value) =>
    fault(`If-None-Match ${JSON.stringify(value).slice(0, 40)}`, (d) => {
      d.headers['if-none-match'] = value;
    }),
  );

/** An `estado` other than the one the endpoint accepts (or ones: a reservation takes two). */
const badEstado = (...valid: string[]) =>
  fc
    .oneof(
      fc.constantFrom<Json>(
        'completada',
        'completado',
        'activa',
        'expirada',
        'CANCELADA',
        'cancelada ',
        'cancelado',
        'cancelada',
        'confirmada',
        '',
        null,
        1,
        true,
        [],
        {},
      ),
      fc.string({ maxLength: 12 }),
      withNul,
    )
    .filter((value) => typeof value !== 'string' || !valid.includes(value));

/** `lineas` broken as a whole or in one line (docs/api.md: 1–100 lines, each product once). */
const badLines = (valid: number): fc.Arbitrary<Json> =>
  fc.oneof(
    fc.constantFrom<Json>([], null, 'x', 1, {}, [null], [[]], [1], [{}]),
    badInteger(1, MAX_INT).map((producto_id) => [{ producto_id, cantidad: 1 }]),
    badInteger(1, MAX_INT).map((cantidad) => [{ producto_id: valid, cantidad }]),
    fc.constant<Json>([{ producto_id: valid, cantidad: new Raw('-0') }]),
    fc.constantFrom<Json>(
      [{ producto_id: valid }],
      [{ cantidad: 1 }],
      [{ producto_id: valid, cantidad: 1, precio_unitario: 1 }],
      [
        { producto_id: valid, cantidad: 1 },
        { producto_id: valid, cantidad: 2 },
      ],
      [{ producto_id: valid, cantidad: 1 }, null],
    ),
    fc.constant<Json>(Array.from({ length: 101 }, (_, i) => ({ producto_id: i + 1, cantidad: 1 }))),
    deep,
  );

/** Lines the data forbids: more than the stock, no stock row, a total too large, a missing product. */
const refusedLines = (s: Seeds) =>
  fc.oneof(
    overStock(s).map(([p, n]) =>
      fault(`line of ${n} on stock ${p.stock}`, (d) =>
        setAttributes(d, { lineas: [{ producto_id: p.id, cantidad: n }] }),
      ),
    ),
    fc
      .integer({ min: 1, max: MAX_INT })
      .map((n) =>
        fault(`line of ${n} without a stock row`, (d) =>
          setAttributes(d, { lineas: [{ producto_id: s.unstocked, cantidad: n }] }),
        ),
      ),
    fc
      .integer({ min: 2, max: MAX_INT })
      .map((n) =>
        fault(`line of ${n} at 99999999.99`, (d) =>
          setAttributes(d, { lineas: [{ producto_id: s.dear, cantidad: n }] }),
        ),
      ),
    fc.tuple(missingId, overStock(s)).map(([id, [p]]) =>
      fault(`a good line and one of missing product ${id}`, (d) =>
        setAttributes(d, {
          lineas: [
            { producto_id: p.id, cantidad: 1 },
            { producto_id: id, cantidad: 1 },
          ],
        }),
      ),
    ),
  );

/** A PATCH sent to another resource, its path and `data.id` both. */
const retarget = (d: { path: string; body: Json | undefined }, path: string, id: number) => {
  d.path = path;
  d.body = updateIn(d.body, ['data', 'id'], () => String(id));
};

const validNombre = fc.constantFrom('Decoy', 'Válido', '😀 emoji');
const validPrecio = fc.constantFrom(1, 19.99, 0.1, 99999999.99);

const productAttributes = (required: boolean): AttributeSpec[] => [
  { name: 'nombre', required, decoy: validNombre, invalid: badString(255, { nonBlank: true }) },
  { name: 'precio', required, decoy: validPrecio, invalid: badPrecio },
  {
    name: 'descripcion',
    required: false,
    decoy: fc.constantFrom('ok', null),
    invalid: badString(5000, { nullable: true }),
  },
];

const allProducts = (s: Seeds) => [...s.stocked.map((p) => p.id), s.unstocked, s.dear];

/** One stocked product and a quantity beyond its stock. */
const overStock = (s: Seeds) =>
  fc
    .constantFrom(...s.stocked)
    .chain((p) => fc.tuple(fc.constant(p), fc.integer({ min: p.stock + 1, max: MAX_INT })));

const products = (segment: string) => `/products/${segment}`;
const inventory = (segment: string) => `/inventory/${segment}`;

/** Every endpoint of both services (docs/api.md §2 and §3). */
export const ENDPOINTS: Endpoint[] = [
  {
    name: 'POST /api/products',
    service: 'products',
    method: 'POST',
    route: () => '/products',
    body: () => ({
      data: { type: 'products', attributes: { nombre: 'Caos', precio: 10, descripcion: 'x' } },
    }),
    mode: 'create',
    attributes: productAttributes(true),
  },
  {
    name: 'GET /api/products/{id}',
    service: 'products',
    method: 'GET',
    route: products,
    ids: allProducts,
    noise: otherIfNoneMatch,
  },
  {
    name: 'GET /api/products',
    service: 'products',
    method: 'GET',
    route: () => '/products',
    query: [
      {
        name: 'page[number]',
        valid: fc.integer({ min: 1, max: 3 }).map(String),
        invalid: badIntText(1, 1_000_000),
      },
      pageSize,
      { name: 'sort', valid: fc.constantFrom('id', '-precio', 'nombre,-id', 'created_at'), invalid: badSort },
      {
        name: 'filter[nombre]',
        text: true,
        valid: fc.string({ unit: 'grapheme', maxLength: 10 }),
        invalid: fc.oneof(withNul, longString(256)),
      },
      { name: 'filter[id]', valid: fc.constantFrom('1', '1,2,3'), invalid: badIdList },
    ],
  },
  {
    name: 'PATCH /api/products/{id}',
    service: 'products',
    method: 'PATCH',
    route: products,
    ids: allProducts,
    body: (id) => ({
      data: { type: 'products', id: String(id), attributes: { nombre: 'Caos', precio: 12.5 } },
    }),
    mode: 'update',
    attributes: productAttributes(false),
    headers: staleIfMatch,
  },
  {
    name: 'DELETE /api/products/{id}',
    service: 'products',
    method: 'DELETE',
    route: products,
    ids: allProducts,
  },
  {
    name: 'GET /api/inventory',
    service: 'inventory',
    method: 'GET',
    route: () => '/inventory',
    query: [pageSize, pageAfter],
  },
  {
    name: 'GET /api/inventory/{id}',
    service: 'inventory',
    method: 'GET',
    route: inventory,
    ids: allProducts,
    noise: otherIfNoneMatch,
  },
  {
    name: 'GET /api/inventory/{id}/movements',
    service: 'inventory',
    method: 'GET',
    route: (segment) => `/inventory/${segment}/movements`,
    ids: allProducts,
    query: [pageSize, pageAfter],
  },
  {
    name: 'PATCH /api/inventory/{id}',
    service: 'inventory',
    method: 'PATCH',
    route: inventory,
    ids: allProducts,
    body: (id) => ({ data: { type: 'inventories', id: String(id), attributes: { cantidad: 7 } } }),
    mode: 'update',
    attributes: [
      // -0 is a valid 0 here, and badInteger never yields it.
      {
        name: 'cantidad',
        required: true,
        decoy: fc.integer({ min: 0, max: 100 }),
        invalid: badInteger(0, MAX_INT),
      },
    ],
    headers: staleIfMatch,
  },
  {
    name: 'POST /api/inventory/{id}/adjustments',
    service: 'inventory',
    method: 'POST',
    route: (segment) => `/inventory/${segment}/adjustments`,
    ids: allProducts,
    body: () => ({ data: { type: 'inventory-adjustments', attributes: { delta: 1, reason: 'caos' } } }),
    mode: 'create',
    attributes: [
      {
        name: 'delta',
        required: true,
        decoy: fc.integer({ min: 1, max: 100 }),
        invalid: fc.oneof(
          badInteger(-MAX_INT, MAX_INT),
          fc.constantFrom(0, -0, new Raw('0.0'), new Raw('-0')),
        ),
      },
      { name: 'reason', required: false, decoy: fc.constant('ok'), invalid: badString(255, {}) },
    ],
    business: (s) =>
      fc.oneof(
        overStock(s).map(([p, n]) =>
          fault(`delta -${n} on stock ${p.stock}`, (d) => {
            d.path = inventory(`${p.id}/adjustments`);
            setAttributes(d, { delta: -n });
          }),
        ),
        fc.integer({ min: 1, max: MAX_INT }).map((n) =>
          fault(`delta -${n} without a stock row`, (d) => {
            d.path = inventory(`${s.unstocked}/adjustments`);
            setAttributes(d, { delta: -n });
          }),
        ),
        fc.constantFrom(...s.stocked).chain((p) =>
          fc.integer({ min: MAX_INT - p.stock + 1, max: MAX_INT }).map((n) =>
            fault(`delta +${n} overflowing stock ${p.stock}`, (d) => {
              d.path = inventory(`${p.id}/adjustments`);
              setAttributes(d, { delta: n });
            }),
          ),
        ),
      ),
  },
  {
    name: 'POST /api/purchases',
    service: 'inventory',
    method: 'POST',
    route: () => '/purchases',
    body: (_, s) => ({
      data: { type: 'purchases', attributes: { producto_id: s.stocked[0]!.id, cantidad: 1 } },
    }),
    mode: 'create',
    attributes: [
      {
        name: 'producto_id',
        required: true,
        decoy: fc.integer({ min: 1, max: MAX_INT }),
        invalid: badInteger(1, MAX_INT),
      },
      {
        name: 'cantidad',
        required: true,
        decoy: fc.constant(1),
        invalid: fc.oneof(badInteger(1, MAX_INT), fc.constant(new Raw('-0'))),
      },
    ],
    headers: badIdempotencyKey,
    business: (s) =>
      fc.oneof(
        overStock(s).map(([p, n]) =>
          fault(`buy ${n} of stock ${p.stock}`, (d) => setAttributes(d, { producto_id: p.id, cantidad: n })),
        ),
        fc
          .integer({ min: 1, max: MAX_INT })
          .map((n) =>
            fault(`buy ${n} without a stock row`, (d) =>
              setAttributes(d, { producto_id: s.unstocked, cantidad: n }),
            ),
          ),
        fc
          .integer({ min: 2, max: MAX_INT })
          .map((n) =>
            fault(`buy ${n} at 99999999.99`, (d) => setAttributes(d, { producto_id: s.dear, cantidad: n })),
          ),
        fc
          .tuple(missingId, fc.integer({ min: 1, max: MAX_INT }))
          .map(([id, n]) =>
            fault(`buy ${n} of missing product ${id}`, (d) =>
              setAttributes(d, { producto_id: id, cantidad: n }),
            ),
          ),
      ),
  },
  {
    name: 'GET /api/purchases/{id}',
    service: 'inventory',
    method: 'GET',
    route: (segment) => `/purchases/${segment}`,
    ids: (s) => [s.purchase],
  },
  {
    name: 'GET /api/purchases',
    service: 'inventory',
    method: 'GET',
    route: () => '/purchases',
    query: [
      pageSize,
      pageAfter,
      {
        name: 'filter[producto_id]',
        valid: fc.integer({ min: 1, max: MAX_INT }).map(String),
        invalid: badIntText(1, MAX_INT),
      },
    ],
  },
  {
    name: 'PATCH /api/purchases/{id}',
    service: 'inventory',
    method: 'PATCH',
    route: (segment) => `/purchases/${segment}`,
    ids: (s) => [s.purchase],
    body: (id) => ({ data: { type: 'purchases', id: String(id), attributes: { estado: 'cancelada' } } }),
    mode: 'update',
    attributes: [
      { name: 'estado', required: true, decoy: fc.constant('cancelada'), invalid: badEstado('cancelada') },
    ],
    headers: staleIfMatch,
    // A line of an order is cancelled only with its order: 409.
    business: (s) =>
      fc.constant(
        fault(`cancel purchase ${s.orderLine}, a line of an order`, (d) =>
          retarget(d, `/purchases/${s.orderLine}`, s.orderLine),
        ),
      ),
  },
  {
    name: 'POST /api/orders',
    service: 'inventory',
    method: 'POST',
    route: () => '/orders',
    body: (_, s) => ({
      data: { type: 'orders', attributes: { lineas: [{ producto_id: s.stocked[0]!.id, cantidad: 1 }] } },
    }),
    mode: 'create',
    attributes: [
      {
        name: 'lineas',
        required: true,
        decoy: fc.constant([{ producto_id: 1, cantidad: 1 }]),
        invalid: badLines(1),
      },
    ],
    headers: badIdempotencyKey,
    business: refusedLines,
  },
  {
    name: 'PATCH /api/orders/{id}',
    service: 'inventory',
    method: 'PATCH',
    route: (segment) => `/orders/${segment}`,
    ids: (s) => [s.order],
    body: (id) => ({ data: { type: 'orders', id: String(id), attributes: { estado: 'cancelado' } } }),
    mode: 'update',
    attributes: [
      { name: 'estado', required: true, decoy: fc.constant('cancelado'), invalid: badEstado('cancelado') },
    ],
    headers: staleIfMatch,
  },
  {
    name: 'POST /api/reservations',
    service: 'inventory',
    method: 'POST',
    route: () => '/reservations',
    body: (_, s) => ({
      data: {
        type: 'reservations',
        attributes: { lineas: [{ producto_id: s.stocked[0]!.id, cantidad: 1 }], expira_en: 600 },
      },
    }),
    mode: 'create',
    attributes: [
      {
        name: 'lineas',
        required: true,
        decoy: fc.constant([{ producto_id: 1, cantidad: 1 }]),
        invalid: badLines(1),
      },
      {
        name: 'expira_en',
        required: false,
        decoy: fc.integer({ min: 1, max: 86_400 }),
        invalid: fc.oneof(badInteger(1, 86_400), fc.constant(new Raw('-0'))),
      },
    ],
    headers: badIdempotencyKey,
    business: refusedLines,
  },
  {
    name: 'PATCH /api/reservations/{id}',
    service: 'inventory',
    method: 'PATCH',
    route: (segment) => `/reservations/${segment}`,
    ids: (s) => [s.reservation],
    body: (id) => ({ data: { type: 'reservations', id: String(id), attributes: { estado: 'confirmada' } } }),
    mode: 'update',
    attributes: [
      {
        name: 'estado',
        required: true,
        decoy: fc.constantFrom('confirmada', 'cancelada'),
        invalid: badEstado('confirmada', 'cancelada'),
      },
    ],
    headers: staleIfMatch,
    // A confirmed reservation cannot be cancelled: 409.
    business: (s) =>
      fc.constant(
        fault(`cancel reservation ${s.confirmedReservation}, confirmed`, (d) => {
          retarget(d, `/reservations/${s.confirmedReservation}`, s.confirmedReservation);
          setAttributes(d, { estado: 'cancelada' });
        }),
      ),
  },
];
