import { AppError } from '@catalogo/kit/errors';

/** The largest amount a DECIMAL(10, 2) column holds, in cents. */
const MAX_CENTS = 9_999_999_999n;

/** A price with at most two decimals as a whole number of cents (exact for any such double). */
export function priceToCents(precio: number): bigint {
  return BigInt(Math.round(precio * 100));
}

export function formatCents(cents: bigint): string {
  const whole = cents / 100n;
  const fraction = (cents % 100n).toString().padStart(2, '0');
  return `${whole}.${fraction}`;
}

/** Whether an amount fits the DECIMAL(10, 2) columns that hold totals. */
export const fitsTotal = (cents: bigint) => cents <= MAX_CENTS;

/**
 * precio × cantidad in exact integer arithmetic. A total the `total` column cannot hold is a 422:
 * the request is well formed, but this purchase cannot be recorded.
 */
export function purchaseTotal(
  precio: number,
  cantidad: number,
  pointer = '/data/attributes/cantidad',
): { unitario: string; total: string; cents: bigint } {
  const unit = priceToCents(precio);
  const total = unit * BigInt(cantidad);
  if (!fitsTotal(total)) throw totalTooLarge(pointer);
  return { unitario: formatCents(unit), total: formatCents(total), cents: total };
}

export const totalTooLarge = (pointer: string) =>
  new AppError(422, 'total_too_large', {
    detail: 'El total de la compra supera el máximo admitido (99999999.99)',
    source: { pointer },
  });
