import {
  CursorLinks,
  CursorQuery,
  errorResponses,
  IdParams,
  MAX_INT,
  NotModified,
  Relationship,
  RequestDocument,
  SelfLinks,
  Text,
} from '@catalogo/kit/jsonapi';
import { type Static, Type } from 'typebox';

export const INVENTORY_TYPE = 'inventories';
export const ADJUSTMENT_TYPE = 'inventory-adjustments';
export const READ_ONLY = [
  'producto_id',
  'updated_at',
  'created_at',
  'total',
  'precio_unitario',
  'reservado',
  'cancelada_at',
  'cancelado_at',
  'expira_at',
];
export const MOVEMENT_TYPE = 'inventory-movements';

export const SetBody = RequestDocument(
  INVENTORY_TYPE,
  Type.Object(
    { cantidad: Type.Integer({ minimum: 0, maximum: MAX_INT, description: 'Cantidad absoluta en stock' }) },
    { additionalProperties: false },
  ),
  true,
  { cantidad: 100 },
);

export const AdjustmentBody = RequestDocument(
  ADJUSTMENT_TYPE,
  Type.Object(
    {
      delta: Type.Integer({
        minimum: -MAX_INT,
        maximum: MAX_INT,
        description: 'Cantidad a sumar (negativa para retirar); distinta de cero',
      }),
      reason: Type.Optional(Text({ maxLength: 255, description: 'Motivo del ajuste' })),
    },
    { additionalProperties: false },
  ),
  false,
  { delta: -2, reason: 'Unidades dañadas' },
);

export type AdjustmentAttributes = Static<typeof AdjustmentBody>['data']['attributes'];

export const InventoryResource = Type.Object(
  {
    type: Type.Literal(INVENTORY_TYPE),
    id: Type.String(),
    attributes: Type.Object({
      producto_id: Type.Integer(),
      cantidad: Type.Integer(),
      reservado: Type.Integer({ description: 'Unidades retenidas por reservas activas' }),
      updated_at: Type.String({ format: 'date-time' }),
    }),
    relationships: Type.Object({ product: Relationship('products') }),
    links: SelfLinks,
  },
  { $id: 'InventoryResource' },
);

export type InventoryResourceT = Static<typeof InventoryResource>;

/** The product as the Products service returned it (its checked members: see products-client.ts). */
const IncludedProduct = Type.Object(
  {},
  { additionalProperties: true, description: 'Producto del servicio de productos' },
);

export const InventoryDocument = Type.Object({
  data: Type.Ref('InventoryResource'),
  included: Type.Array(IncludedProduct),
  links: SelfLinks,
});

export const InventoryCollection = Type.Object({
  data: Type.Array(Type.Ref('InventoryResource')),
  links: CursorLinks,
});

export const InventoryQuery = CursorQuery({}, 'Cursor: el producto_id tras el que empieza la página');

const MovementSource = Type.Object({
  data: Type.Union([
    Type.Object({
      type: Type.Union([Type.Literal('purchases'), Type.Literal('orders'), Type.Literal('reservations')]),
      id: Type.String(),
    }),
    Type.Null(),
  ]),
});

export const MovementResource = Type.Object(
  {
    type: Type.Literal(MOVEMENT_TYPE),
    id: Type.String(),
    attributes: Type.Object({
      producto_id: Type.Integer(),
      causa: Type.String({
        description:
          'opening, set, adjustment, purchase, cancellation, reservation, confirmation, release o expiry',
      }),
      delta: Type.Integer({ description: 'Cambio de cantidad' }),
      delta_reservado: Type.Integer({ description: 'Cambio de reservado' }),
      cantidad: Type.Integer({ description: 'Cantidad tras el cambio' }),
      reservado: Type.Integer({ description: 'Reservado tras el cambio' }),
      reason: Type.Union([Type.String(), Type.Null()]),
      created_at: Type.String({ format: 'date-time' }),
    }),
    relationships: Type.Object({ source: MovementSource }),
  },
  { $id: 'MovementResource' },
);

export type MovementResourceT = Static<typeof MovementResource>;

export const MovementCollection = Type.Object({
  data: Type.Array(Type.Ref('MovementResource')),
  links: CursorLinks,
});

export const MovementQuery = CursorQuery({}, 'Cursor: id del último movimiento visto');

export { IdParams };
export const readErrors = { 304: NotModified, ...errorResponses(400, 401, 404, 406, 503) };
export const listErrors = errorResponses(400, 401, 406);
export const setErrors = errorResponses(400, 401, 404, 406, 409, 412, 413, 415, 503);
export const adjustErrors = errorResponses(400, 401, 404, 406, 409, 413, 415, 503);
export const movementErrors = errorResponses(400, 401, 404, 406, 503);
