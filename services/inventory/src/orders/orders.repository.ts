import type { Queryable } from '@catalogo/kit/db';
import type { PricedLine } from './orders.lines.js';

export interface OrderLineRow {
  purchase_id: number;
  producto_id: number;
  cantidad: number;
  precio_unitario: string;
  total: string;
}

export interface OrderRow {
  id: number;
  total: string;
  estado: 'completado' | 'cancelado';
  created_at: string;
  cancelado_at: string | null;
  reserva_id: number | null;
  lineas: OrderLineRow[];
}

export type PlacedOrder =
  | { ok: true; order: OrderRow }
  | { ok: false; short: { index: number; disponible: number }[] };

/**
 * Records an order through `registrar_pedido` (migration 1764720000000): every line or none, stock
 * rows locked in product-id order. One statement: atomic on its own, or part of the caller's
 * transaction (with an idempotency key). With `reservaId`, the order sells the units that locked,
 * active reservation holds.
 */
export async function placeOrder(
  db: Queryable,
  lines: PricedLine[],
  total: string,
  reservaId: number | null = null,
): Promise<PlacedOrder> {
  const { rows } = await db.query<{
    linea: number;
    disponible: number | null;
    pedido_id: number | null;
    compra_id: number | null;
    created_at: string | null;
  }>({
    name: 'orders.place',
    text: `SELECT linea, disponible, pedido_id, compra_id, created_at
           FROM registrar_pedido($1::int[], $2::int[], $3::numeric[], $4::numeric[], $5::numeric, $6::int)`,
    values: [
      lines.map((l) => l.productoId),
      lines.map((l) => l.cantidad),
      lines.map((l) => l.unitario),
      lines.map((l) => l.total),
      total,
      reservaId,
    ],
  });
  const first = rows[0]!;
  if (first.pedido_id === null) {
    return { ok: false, short: rows.map((row) => ({ index: row.linea - 1, disponible: row.disponible! })) };
  }
  return {
    ok: true,
    order: {
      id: first.pedido_id,
      total,
      estado: 'completado',
      created_at: first.created_at!,
      cancelado_at: null,
      reserva_id: reservaId,
      lineas: rows.map((row, index) => ({
        purchase_id: row.compra_id!,
        producto_id: lines[index]!.productoId,
        cantidad: lines[index]!.cantidad,
        precio_unitario: lines[index]!.unitario,
        total: lines[index]!.total,
      })),
    },
  };
}

const SELECT_ORDERS = `
  SELECT p.id, p.total::text AS total, p.estado, p.created_at, p.cancelado_at, p.reserva_id,
         (SELECT json_agg(json_build_object(
                   'purchase_id', h.id, 'producto_id', h.producto_id, 'cantidad', h.cantidad,
                   'precio_unitario', h.precio_unitario::text, 'total', h.total::text) ORDER BY h.linea)
          FROM historial_compras h WHERE h.pedido_id = p.id) AS lineas
  FROM pedidos p`;

export async function findOrder(db: Queryable, id: number): Promise<OrderRow | undefined> {
  const { rows } = await db.query<OrderRow>(`${SELECT_ORDERS} WHERE p.id = $1`, [id]);
  return rows[0];
}

/** The order, its row locked for the rest of the transaction. */
export async function lockOrder(db: Queryable, id: number): Promise<OrderRow | undefined> {
  const { rows } = await db.query<OrderRow>(`${SELECT_ORDERS} WHERE p.id = $1 FOR UPDATE OF p`, [id]);
  return rows[0];
}

/** Marks an order cancelled and writes its `order.cancelled` event. */
export async function markOrderCancelled(db: Queryable, id: number): Promise<string> {
  const { rows } = await db.query<{ cancelado_at: string }>(
    `WITH cancelled AS (
       UPDATE pedidos SET estado = 'cancelado', cancelado_at = CURRENT_TIMESTAMP WHERE id = $1
       RETURNING cancelado_at
     ), event AS (
       INSERT INTO outbox (type, producto_id, data)
       SELECT 'order.cancelled', NULL, jsonb_build_object('order_id', $1::text) FROM cancelled
     )
     SELECT cancelado_at FROM cancelled`,
    [id],
  );
  return rows[0]!.cancelado_at;
}

/** Newest first by id, keyset: `before` is the id of the last order of the previous page. */
export async function listOrders(
  db: Queryable,
  criteria: { productoId?: number; before?: number; limit: number },
): Promise<OrderRow[]> {
  const conditions: string[] = [];
  const values: number[] = [];
  if (criteria.productoId !== undefined) {
    values.push(criteria.productoId);
    conditions.push(
      `p.id IN (SELECT pedido_id FROM historial_compras WHERE producto_id = $${values.length} AND pedido_id IS NOT NULL)`,
    );
  }
  if (criteria.before !== undefined) {
    values.push(criteria.before);
    conditions.push(`p.id < $${values.length}`);
  }
  values.push(criteria.limit);
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const { rows } = await db.query<OrderRow>(
    `${SELECT_ORDERS} ${where} ORDER BY p.id DESC LIMIT $${values.length}`,
    values,
  );
  return rows;
}
