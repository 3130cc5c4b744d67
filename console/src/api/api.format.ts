const money = new Intl.NumberFormat('es-ES', { style: 'currency', currency: 'EUR' });
const dateTime = new Intl.DateTimeFormat('es-ES', { dateStyle: 'short', timeStyle: 'medium' });
const units = new Intl.NumberFormat('es-ES');

export const formatMoney = (value: number) => money.format(value);
export const formatDate = (iso: string) => dateTime.format(new Date(iso));
export const formatUnits = (value: number) => units.format(value);

/** Prices have at most two decimals: cents are exact integers, so a cart's estimate adds up exactly. */
export const lineTotal = (precio: number, cantidad: number) => (Math.round(precio * 100) * cantidad) / 100;

/** Stock at or below this many units is flagged as low. */
export const LOW_STOCK = 5;

export const CAUSAS: Record<string, string> = {
  opening: 'Apertura',
  set: 'Fijada',
  adjustment: 'Ajuste',
  purchase: 'Compra',
  cancellation: 'Cancelación',
  reservation: 'Reserva',
  confirmation: 'Confirmación',
  release: 'Liberación',
  expiry: 'Caducidad',
};

/**
 * A fresh Idempotency-Key. `crypto.randomUUID` exists only in secure contexts (https, localhost);
 * the console may be opened over plain http on a LAN address, where `getRandomValues` still works.
 */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `consola-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
