import type { Deadline } from '@catalogo/kit/deadline';
import { AppError, badRequest, type Problem } from '@catalogo/kit/errors';
import { PRODUCT_NOT_FOUND } from '../inventory/inventory.routes.js';
import { fitsTotal, formatCents, purchaseTotal, totalTooLarge } from '../money.js';
import type { ProductResource, ProductsClient } from '../products-client.js';
import { INSUFFICIENT } from '../stock/stock.service.js';
import type { LineInputT } from './orders.schemas.js';

/** A line of an order or a reservation, priced: exact decimal texts. */
export interface PricedLine {
  productoId: number;
  cantidad: number;
  unitario: string;
  total: string;
}

const pointer = (index: number, member: 'producto_id' | 'cantidad') =>
  `/data/attributes/lineas/${index}/${member}`;

/** 400 naming every line that repeats a product of an earlier line. */
export function checkDistinct(lineas: LineInputT[]): void {
  const seen = new Set<number>();
  const problems: Problem[] = [];
  lineas.forEach((line, index) => {
    if (seen.has(line.producto_id)) {
      problems.push({
        detail: 'El producto ya figura en otra línea',
        source: { pointer: pointer(index, 'producto_id') },
      });
    }
    seen.add(line.producto_id);
  });
  if (problems.length > 0) throw badRequest(problems, 'duplicate_product');
}

/** The request a saga serves: its id (forwarded to Products) and its deadline. */
export interface Caller {
  id: string;
  deadline: Deadline;
}

/**
 * Fetches every product of the lines from the Products service in one request, outside any
 * transaction, and prices each line exactly. 404 with one error per line whose product does not
 * exist; 422 for a line, or the whole, whose total the columns cannot hold.
 */
export async function priceLines(
  products: ProductsClient,
  lineas: LineInputT[],
  caller: Caller,
): Promise<{ lines: PricedLine[]; total: string; products: ProductResource[] }> {
  const found = await products.getProducts(
    lineas.map((line) => line.producto_id),
    caller.id,
    caller.deadline,
  );
  // Past the deadline nothing is written: the client is answered 503 instead.
  caller.deadline.check();
  const missing = lineas.flatMap((line, index) =>
    found.has(line.producto_id)
      ? []
      : [{ detail: PRODUCT_NOT_FOUND, source: { pointer: pointer(index, 'producto_id') } }],
  );
  if (missing.length > 0) throw new AppError(404, 'not_found', missing);

  const tooLarge: Problem[] = [];
  let sum = 0n;
  const lines = lineas.map((line, index): PricedLine => {
    const precio = found.get(line.producto_id)!.attributes.precio;
    try {
      const priced = purchaseTotal(precio, line.cantidad, pointer(index, 'cantidad'));
      sum += priced.cents;
      return {
        productoId: line.producto_id,
        cantidad: line.cantidad,
        unitario: priced.unitario,
        total: priced.total,
      };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      tooLarge.push(...err.problems);
      return { productoId: line.producto_id, cantidad: line.cantidad, unitario: '0', total: '0' };
    }
  });
  if (tooLarge.length === 0 && !fitsTotal(sum))
    tooLarge.push(...totalTooLarge('/data/attributes/lineas').problems);
  if (tooLarge.length > 0) throw new AppError(422, 'total_too_large', tooLarge);
  return {
    lines,
    total: formatCents(sum),
    products: lineas.map((line) => found.get(line.producto_id)!),
  };
}

/** A stored line as the `lineas` of a resource: exact decimal text read back as JSON numbers. */
export const lineOutput = (line: {
  producto_id: number;
  cantidad: number;
  precio_unitario: string;
  total: string;
}) => ({
  producto_id: line.producto_id,
  cantidad: line.cantidad,
  // Number() of a numeric column's text prints back the same digits.
  precio_unitario: Number(line.precio_unitario),
  total: Number(line.total),
});

/** 409 with one error per short line: its pointer and the stock it could have had. */
export function shortLines(short: { index: number; disponible: number }[]): AppError {
  return new AppError(
    409,
    'insufficient_stock',
    short.map(({ index, disponible }) => ({
      detail: INSUFFICIENT,
      source: { pointer: pointer(index, 'cantidad') },
      meta: { disponible },
    })),
  );
}
