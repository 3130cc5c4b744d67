import type { Queryable } from '@catalogo/kit/db';
import type { OutboxEvent } from '../outbox/outbox.repository.js';

/** A delivered event as the live stream sends it: its place in delivery order and its envelope. */
export interface DeliveredEvent {
  /** `delivered_seq`: the SSE `id`. */
  seq: number;
  /** The product column of the outbox row (null for an event of several products). */
  productoId: number | null;
  envelope: OutboxEvent;
}

interface Row {
  seq: string;
  producto_id: number | null;
  id: string;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
}

/**
 * Delivered events numbered above `after` (and at most `upTo` when given), in delivery order:
 * an index range scan on `delivered_seq`.
 */
export async function deliveredAfter(
  db: Queryable,
  after: number,
  limit: number,
  upTo: number = Number.MAX_SAFE_INTEGER,
): Promise<DeliveredEvent[]> {
  const { rows } = await db.query<Row>(
    `SELECT delivered_seq::text AS seq, producto_id, id, type, occurred_at, data FROM outbox
     WHERE delivered_seq > $1 AND delivered_seq <= $2
     ORDER BY delivered_seq LIMIT $3`,
    [after, upTo, limit],
  );
  return rows.map((row) => ({
    seq: Number(row.seq),
    productoId: row.producto_id,
    envelope: { id: row.id, type: row.type, occurred_at: row.occurred_at, data: row.data },
  }));
}

export interface StreamBounds {
  /** The highest number of a delivered event still held (0 when none is). */
  newest: number;
  /** The lowest number of a delivered event still held (0 when none is). */
  oldest: number;
  /** The highest number ever given, purged events included (0 before the first delivery). */
  issued: number;
  /** Whether the event numbered `id` is still held. */
  present: boolean;
}

/** Where the delivered events begin and end now, and whether event `id` is still retained. */
export async function streamBounds(db: Queryable, id: number): Promise<StreamBounds> {
  const { rows } = await db.query<Record<keyof StreamBounds, string | boolean>>(
    `SELECT COALESCE((SELECT max(delivered_seq) FROM outbox), 0)::text AS newest,
            COALESCE((SELECT min(delivered_seq) FROM outbox), 0)::text AS oldest,
            (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_delivered_seq)::text AS issued,
            EXISTS (SELECT 1 FROM outbox WHERE delivered_seq = $1) AS present`,
    [id],
  );
  const row = rows[0]!;
  return {
    newest: Number(row.newest),
    oldest: Number(row.oldest),
    issued: Number(row.issued),
    present: row.present === true,
  };
}
