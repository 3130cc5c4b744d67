import {
  CursorLinks,
  CursorQuery,
  errorResponses,
  IdParams,
  RequestDocument,
  SelfLinks,
} from '@catalogo/kit/jsonapi';
import { type Static, Type } from 'typebox';
import { LineOutput, LinesInput } from '../orders/orders.schemas.js';

export const RESERVATION_TYPE = 'reservations';
export const ESTADOS = ['activa', 'confirmada', 'cancelada', 'expirada'] as const;
export type Estado = (typeof ESTADOS)[number];
export const DEFAULT_EXPIRA_EN = 900;

export const CreateReservationBody = RequestDocument(
  RESERVATION_TYPE,
  Type.Object(
    {
      lineas: LinesInput,
      expira_en: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 86_400,
          description: `Segundos hasta que expira (1–86400, por defecto ${DEFAULT_EXPIRA_EN})`,
        }),
      ),
    },
    { additionalProperties: false },
  ),
  false,
  { lineas: [{ producto_id: 1, cantidad: 2 }], expira_en: 600 },
);

export const UpdateReservationBody = RequestDocument(
  RESERVATION_TYPE,
  Type.Object(
    {
      estado: Type.Union([Type.Literal('confirmada'), Type.Literal('cancelada')], {
        description: 'confirmada (vender lo reservado) o cancelada (devolverlo al stock)',
      }),
    },
    { additionalProperties: false },
  ),
  true,
  { estado: 'confirmada' },
);

export const ReservationResource = Type.Object(
  {
    type: Type.Literal(RESERVATION_TYPE),
    id: Type.String(),
    attributes: Type.Object({
      lineas: Type.Array(LineOutput),
      total: Type.Number(),
      estado: Type.Union([
        Type.Literal('activa'),
        Type.Literal('confirmada'),
        Type.Literal('cancelada'),
        Type.Literal('expirada'),
      ]),
      expira_at: Type.String({ format: 'date-time' }),
      created_at: Type.String({ format: 'date-time' }),
    }),
    relationships: Type.Object({
      order: Type.Object({
        data: Type.Union([Type.Object({ type: Type.Literal('orders'), id: Type.String() }), Type.Null()]),
      }),
    }),
    links: SelfLinks,
  },
  { $id: 'ReservationResource' },
);

export type ReservationResourceT = Static<typeof ReservationResource>;

const Included = Type.Array(Type.Object({}, { additionalProperties: true }));

export const ReservationDocument = Type.Object({
  data: Type.Ref('ReservationResource'),
  included: Type.Optional(Included),
  links: SelfLinks,
});

export const ReservationCollection = Type.Object({
  data: Type.Array(Type.Ref('ReservationResource')),
  links: CursorLinks,
});

export const ReservationListQuery = CursorQuery(
  {
    'filter[estado]': Type.Optional(
      Type.String({ description: 'activa, confirmada, cancelada o expirada', example: 'activa' }),
    ),
  },
  'Cursor: id de la última reserva vista',
);

export { IdParams };
export const createErrors = errorResponses(400, 401, 403, 404, 406, 409, 413, 415, 422, 503);
export const readErrors = errorResponses(400, 401, 404, 406);
export const listErrors = errorResponses(400, 401, 406);
export const updateErrors = errorResponses(400, 401, 404, 406, 409, 412, 413, 415);
