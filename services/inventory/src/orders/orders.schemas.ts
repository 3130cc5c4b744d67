import {
  CursorLinks,
  CursorQuery,
  errorResponses,
  IdParams,
  MAX_INT,
  RequestDocument,
  SelfLinks,
} from '@catalogo/kit/jsonapi';
import { type Static, Type } from 'typebox';

export const ORDER_TYPE = 'orders';
/** Lines of an order or a reservation at most: the Products service answers 100 ids in one request. */
export const MAX_LINES = 100;

export const LineInput = Type.Object(
  {
    producto_id: Type.Integer({ minimum: 1, maximum: MAX_INT, description: 'Producto' }),
    cantidad: Type.Integer({ minimum: 1, maximum: MAX_INT, description: 'Unidades (≥ 1)' }),
  },
  { additionalProperties: false },
);

export const LinesInput = Type.Array(LineInput, {
  minItems: 1,
  maxItems: MAX_LINES,
  description: `De 1 a ${MAX_LINES} líneas, cada producto una sola vez`,
});

export type LineInputT = Static<typeof LineInput>;

export const CreateOrderBody = RequestDocument(
  ORDER_TYPE,
  Type.Object({ lineas: LinesInput }, { additionalProperties: false }),
  false,
  {
    lineas: [
      { producto_id: 1, cantidad: 2 },
      { producto_id: 2, cantidad: 1 },
    ],
  },
);

export const CancelOrderBody = RequestDocument(
  ORDER_TYPE,
  Type.Object(
    { estado: Type.Literal('cancelado', { description: 'Solo se admite cancelar' }) },
    { additionalProperties: false },
  ),
  true,
  { estado: 'cancelado' },
);

export const LineOutput = Type.Object({
  producto_id: Type.Integer(),
  cantidad: Type.Integer(),
  precio_unitario: Type.Number(),
  total: Type.Number(),
});

const Identifier = (type: string) => Type.Object({ type: Type.Literal(type), id: Type.String() });

export const OrderResource = Type.Object(
  {
    type: Type.Literal(ORDER_TYPE),
    id: Type.String(),
    attributes: Type.Object({
      lineas: Type.Array(LineOutput),
      total: Type.Number(),
      estado: Type.Union([Type.Literal('completado'), Type.Literal('cancelado')]),
      created_at: Type.String({ format: 'date-time' }),
      cancelado_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    }),
    relationships: Type.Object({
      purchases: Type.Object({ data: Type.Array(Identifier('purchases')) }),
      reservation: Type.Object({ data: Type.Union([Identifier('reservations'), Type.Null()]) }),
    }),
    links: SelfLinks,
  },
  { $id: 'OrderResource' },
);

export type OrderResourceT = Static<typeof OrderResource>;

export const OrderDocument = Type.Object({ data: Type.Ref('OrderResource'), links: SelfLinks });

export const CreatedOrderDocument = Type.Object({
  data: Type.Ref('OrderResource'),
  included: Type.Array(Type.Object({}, { additionalProperties: true })),
  links: SelfLinks,
});

export const OrderCollection = Type.Object({
  data: Type.Array(Type.Ref('OrderResource')),
  links: CursorLinks,
});

export const OrderListQuery = CursorQuery(
  {
    'filter[producto_id]': Type.Optional(
      Type.String({ description: 'Solo los pedidos con una línea de este producto', example: '1' }),
    ),
  },
  'Cursor: id del último pedido visto',
);

export { IdParams };
export const createErrors = errorResponses(400, 401, 403, 404, 406, 409, 413, 415, 422, 503);
export const readErrors = errorResponses(400, 401, 404, 406);
export const listErrors = errorResponses(400, 401, 406);
export const cancelErrors = errorResponses(400, 401, 404, 406, 409, 412, 413, 415);
