import {
  CursorLinks,
  CursorQuery,
  errorResponses,
  IdParams,
  MAX_INT,
  Relationship,
  RequestDocument,
  SelfLinks,
} from '@catalogo/kit/jsonapi';
import { type Static, Type } from 'typebox';

export const PURCHASE_TYPE = 'purchases';

export const CreateBody = RequestDocument(
  PURCHASE_TYPE,
  Type.Object(
    {
      producto_id: Type.Integer({ minimum: 1, maximum: MAX_INT, description: 'Producto a comprar' }),
      cantidad: Type.Integer({ minimum: 1, maximum: MAX_INT, description: 'Unidades (≥ 1)' }),
    },
    { additionalProperties: false },
  ),
  false,
  { producto_id: 1, cantidad: 2 },
);

export const CancelBody = RequestDocument(
  PURCHASE_TYPE,
  Type.Object(
    { estado: Type.Literal('cancelada', { description: 'Solo se admite cancelar' }) },
    { additionalProperties: false },
  ),
  true,
  { estado: 'cancelada' },
);

export type CreateAttributes = Static<typeof CreateBody>['data']['attributes'];

export const PurchaseResource = Type.Object(
  {
    type: Type.Literal(PURCHASE_TYPE),
    id: Type.String(),
    attributes: Type.Object({
      producto_id: Type.Integer(),
      cantidad: Type.Integer(),
      precio_unitario: Type.Number(),
      total: Type.Number(),
      created_at: Type.String({ format: 'date-time' }),
      estado: Type.Union([Type.Literal('completada'), Type.Literal('cancelada')]),
      cancelada_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    }),
    relationships: Type.Object({
      product: Relationship('products'),
      order: Type.Object({
        data: Type.Union([Type.Object({ type: Type.Literal('orders'), id: Type.String() }), Type.Null()]),
      }),
    }),
    links: SelfLinks,
  },
  { $id: 'PurchaseResource' },
);

export type PurchaseResourceT = Static<typeof PurchaseResource>;

export const PurchaseDocument = Type.Object({ data: Type.Ref('PurchaseResource'), links: SelfLinks });

export const CreatedPurchaseDocument = Type.Object({
  data: Type.Ref('PurchaseResource'),
  included: Type.Array(Type.Object({}, { additionalProperties: true })),
  links: SelfLinks,
});

export const PurchaseCollection = Type.Object({
  data: Type.Array(Type.Ref('PurchaseResource')),
  links: CursorLinks,
});

export const ListQuery = CursorQuery(
  {
    'filter[producto_id]': Type.Optional(
      Type.String({ description: 'Solo las compras de este producto', example: '1' }),
    ),
  },
  'Cursor: id de la última compra vista',
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description: 'Clave de idempotencia: 1–255 caracteres ASCII visibles',
      example: 'pedido-2026-0001',
    }),
  ),
});

export { IdParams };
export const createErrors = errorResponses(400, 401, 404, 406, 409, 413, 415, 422, 503);
export const readErrors = errorResponses(400, 401, 404, 406);
export const listErrors = errorResponses(400, 401, 406);
export const cancelErrors = errorResponses(400, 401, 404, 406, 409, 412, 413, 415);
