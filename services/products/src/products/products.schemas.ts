import {
  errorResponses,
  IdParams,
  NotModified,
  PaginationLinks,
  RequestDocument,
  SelfLinks,
  Text,
} from '@catalogo/kit/jsonapi';
import { type Static, Type } from 'typebox';

export const PRODUCT_TYPE = 'products';
export const MAX_PRECIO = 99_999_999.99;
export const READ_ONLY = ['created_at', 'updated_at'];

const Nombre = Text({ minLength: 1, maxLength: 255, description: 'Nombre (se recortan los espacios)' });
const Precio = Type.Number({
  exclusiveMinimum: 0,
  maximum: MAX_PRECIO,
  multipleOf: 0.01,
  description: 'Precio, > 0, como máximo 2 decimales',
});
// One JSON type list instead of anyOf, so a wrong value yields one error, not three.
const Descripcion = Type.Unsafe<string | null>({
  type: ['string', 'null'],
  maxLength: 5000,
  pattern: '^[^\\u0000]*$',
  description: 'Descripción opcional (≤ 5000 caracteres)',
});

export const CreateBody = RequestDocument(
  PRODUCT_TYPE,
  Type.Object(
    { nombre: Nombre, precio: Precio, descripcion: Type.Optional(Descripcion) },
    { additionalProperties: false },
  ),
  false,
  { nombre: 'Café de Colombia 500 g', precio: 12.5, descripcion: 'Tostado medio' },
);

export const UpdateBody = RequestDocument(
  PRODUCT_TYPE,
  Type.Object(
    { nombre: Type.Optional(Nombre), precio: Type.Optional(Precio), descripcion: Type.Optional(Descripcion) },
    { additionalProperties: false },
  ),
  true,
  { precio: 13.5 },
);

export type CreateAttributes = Static<typeof CreateBody>['data']['attributes'];
export type UpdateAttributes = Static<typeof UpdateBody>['data']['attributes'];

export const ProductResource = Type.Object(
  {
    type: Type.Literal(PRODUCT_TYPE),
    id: Type.String(),
    attributes: Type.Object({
      nombre: Type.String(),
      precio: Type.Number(),
      descripcion: Type.Union([Type.String(), Type.Null()]),
      created_at: Type.String({ format: 'date-time' }),
      updated_at: Type.String({ format: 'date-time' }),
    }),
    links: SelfLinks,
  },
  { $id: 'ProductResource' },
);

export type ProductResourceT = Static<typeof ProductResource>;

export const ProductDocument = Type.Object({ data: Type.Ref('ProductResource'), links: SelfLinks });

export const ProductCollection = Type.Object({
  data: Type.Array(Type.Ref('ProductResource')),
  meta: Type.Object({ total: Type.Integer() }),
  links: PaginationLinks,
});

export const SORT_FIELDS = ['id', 'nombre', 'precio', 'created_at'] as const;

export const ListQuery = Type.Object(
  {
    'page[number]': Type.Optional(Type.String({ description: 'Página (≥ 1, por defecto 1)', example: '1' })),
    'page[size]': Type.Optional(
      Type.String({ description: 'Tamaño de página (1–100, por defecto 20)', example: '20' }),
    ),
    sort: Type.Optional(
      Type.String({
        description: `Campos separados por comas entre ${SORT_FIELDS.join(', ')}; '-' invierte`,
        example: '-precio,nombre',
      }),
    ),
    'filter[nombre]': Type.Optional(
      Text({
        maxLength: 255,
        description: 'Subcadena del nombre, sin distinguir mayúsculas',
        example: 'café',
      }),
    ),
    'filter[id]': Type.Optional(
      Type.String({ description: 'Lista de ids separados por comas (máx. 100)', example: '1,2,3' }),
    ),
  },
  { additionalProperties: false },
);

export { IdParams };
export const createErrors = errorResponses(400, 401, 403, 406, 409, 413, 415);
export const readErrors = { 304: NotModified, ...errorResponses(400, 401, 404, 406) };
export const listErrors = errorResponses(400, 401, 406);
export const updateErrors = errorResponses(400, 401, 404, 406, 409, 412, 413, 415);
export const deleteErrors = errorResponses(400, 401, 404, 406);
