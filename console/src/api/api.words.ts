import { ApiError, type ApiErrorObject } from './api.client';

/**
 * What to tell a person about a failed request, in plain words. The services' `detail` texts are
 * already Spanish sentences; the statuses that need the person to act get words of their own.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return 'Algo salió mal. Vuelva a intentarlo.';
  const first = error.errors[0];
  switch (error.status) {
    case 0:
      return 'No se pudo contactar con el servidor. Compruebe la conexión y vuelva a intentarlo.';
    case 401:
      return 'La API key no es válida o ha caducado. Vuelva a introducirla.';
    case 412:
      return 'El dato cambió mientras lo editaba: se ha vuelto a leer. Revíselo y repita la operación.';
    case 502:
    case 503:
    case 504:
      return 'El servicio no está disponible en este momento. Vuelva a intentarlo en unos segundos.';
  }
  if (error.errors.some((e) => e.code === 'insufficient_stock')) return insufficientStock(error.errors);
  if (first?.code === 'idempotency_key_in_flight')
    return 'Esta operación ya se está procesando. Espere un momento.';
  if (error.status >= 500) return 'El servidor tuvo un problema. Vuelva a intentarlo en unos segundos.';
  const details = [...new Set(error.errors.map((e) => e.detail).filter(Boolean))];
  return details.length > 0 ? details.join(' · ') : `La petición fue rechazada (HTTP ${error.status}).`;
}

function insufficientStock(errors: ApiErrorObject[]): string {
  const available = errors
    .map((e) => e.meta?.disponible)
    .filter((units): units is number => typeof units === 'number');
  if (available.length === 1)
    return `No hay stock suficiente: solo hay ${available[0]} ${available[0] === 1 ? 'unidad' : 'unidades'} disponibles.`;
  return 'No hay stock suficiente para alguna de las líneas.';
}

/** Errors that point at a request member, keyed by the member's path under `/data/attributes/`. */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const fields: Record<string, string> = {};
  for (const e of error.errors) {
    const pointer = e.source?.pointer;
    if (!pointer?.startsWith('/data/attributes/') || !e.detail) continue;
    const field = pointer.slice('/data/attributes/'.length);
    fields[field] = fields[field] ? `${fields[field]} · ${e.detail}` : e.detail;
  }
  return fields;
}
