import { EventStreamContentType, fetchEventSource } from '@microsoft/fetch-event-source';
import { type QueryClient, useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';
import type { Page } from '../api/api.client';
import type { Inventory } from '../api/api.types';

/** An event as the Inventory service delivers it: the outbox envelope. */
export interface LiveEvent {
  id: string;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
  /** The SSE message id: increasing, unique within the stream. */
  seq: string;
}

export type LiveStatus = 'conectando' | 'conectado' | 'reconectando' | 'no disponible';

interface Live {
  events: LiveEvent[];
  status: LiveStatus;
}

const LiveContext = createContext<Live>({ events: [], status: 'conectando' });
export const useLive = () => useContext(LiveContext);

const KEEP = 200;
const RETRY_MS = 3_000;

class Fatal extends Error {}

/**
 * Figures on screen follow the events: the stock a screen shows is patched in place (no request),
 * and the lists an event changes are read again.
 */
function apply(client: QueryClient, event: LiveEvent): void {
  const data = event.data;
  if (event.type === 'inventory.updated' && typeof data.producto_id === 'number') {
    const id = String(data.producto_id);
    client.setQueryData<Page<Inventory>>(['inventory', id], (old) =>
      old
        ? {
            ...old,
            data: { ...old.data, cantidad: Number(data.cantidad), reservado: Number(data.reservado) },
            etag: undefined,
          }
        : old,
    );
    void client.invalidateQueries({ queryKey: ['movements', id] });
    void client.invalidateQueries({ queryKey: ['stock-list'] });
  }
  if (event.type.startsWith('purchase.')) void client.invalidateQueries({ queryKey: ['purchases'] });
  if (event.type.startsWith('order.')) void client.invalidateQueries({ queryKey: ['orders'] });
  if (event.type.startsWith('reservation.')) void client.invalidateQueries({ queryKey: ['reservations'] });
}

/**
 * One stream for the whole console. `EventSource` cannot send `X-API-Key`, so the stream is read
 * with fetch; the library reconnects with `Last-Event-ID`, so no event is missed across a drop.
 */
export function LiveProvider(props: { apiKey: string; children: ReactNode }) {
  const client = useQueryClient();
  const [events, setEvents] = useState<LiveEvent[]>([]);
  const [status, setStatus] = useState<LiveStatus>('conectando');

  useEffect(() => {
    const controller = new AbortController();
    void fetchEventSource('/api/events', {
      headers: { 'X-API-Key': props.apiKey },
      signal: controller.signal,
      openWhenHidden: true,
      async onopen(response) {
        const type = response.headers.get('content-type') ?? '';
        if (response.ok && type.startsWith(EventStreamContentType)) {
          setStatus('conectado');
          return;
        }
        if (response.status === 401 || response.status === 404) throw new Fatal(String(response.status));
        throw new Error(`HTTP ${response.status}`);
      },
      onmessage(message) {
        if (!message.data) return;
        try {
          const envelope = JSON.parse(message.data) as Omit<LiveEvent, 'seq'>;
          // The stream's own notices (not events of the outbox) carry no envelope.
          if (!envelope.id || !envelope.data) return;
          const event = { ...envelope, type: envelope.type ?? message.event, seq: message.id };
          setEvents((previous) =>
            previous.some((e) => e.id === event.id) ? previous : [event, ...previous].slice(0, KEEP),
          );
          apply(client, event);
        } catch {
          // Not an envelope (a comment or a keep-alive): nothing to show.
        }
      },
      onclose() {
        // The server ended the stream (a restart, a deploy): reconnect, as for a dropped connection.
        throw new Error('stream closed');
      },
      onerror(err) {
        if (err instanceof Fatal) {
          setStatus('no disponible');
          throw err;
        }
        setStatus('reconectando');
        return RETRY_MS;
      },
    }).catch(() => undefined);
    return () => controller.abort();
  }, [props.apiKey, client]);

  return <LiveContext.Provider value={{ events, status }}>{props.children}</LiveContext.Provider>;
}
