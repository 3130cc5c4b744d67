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

/**
 * precio × cantidad in exact integer arithmetic. A total the `total` column cannot hold is a 422:
 * the request is well formed, but this purchase cannot be recorded.
 */
export function purchaseTotal(precio: number, cantidad: number): { unitario: string; total: string } {
  const unit = priceToCents(precio);
  const total = unit * BigInt(cantidad);
  if (total > MAX_CENTS) {
    throw new AppError(422, 'total_too_large', {
      detail: 'El total de la compra supera el máximo admitido (99999999.99)',
      source: { pointer: '/data/attributes/cantidad' },
    });
  }
  return { unitario: formatCents(unit), total: formatCents(total) };
}
