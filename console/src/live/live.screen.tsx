import { Badge, Group, Paper, Stack, Text, Title } from '@mantine/core';
import { CAUSAS, formatDate, formatMoney, formatUnits } from '../api/api.format';
import { Empty } from '../common/common.states';
import { type LiveEvent, useLive } from './live.context';

const n = (value: unknown) => formatUnits(Number(value));

/** One line in plain words for each event type the Inventory service emits. */
export function summarize(event: LiveEvent): string {
  const d = event.data;
  switch (event.type) {
    case 'inventory.updated':
      return `Producto #${d.producto_id}: cantidad ${n(d.cantidad_anterior)} → ${n(d.cantidad)}, reservado ${n(
        d.reservado_anterior ?? d.reservado,
      )} → ${n(d.reservado)} (${CAUSAS[String(d.causa)] ?? d.causa})`;
    case 'purchase.completed':
      return `Compra #${d.purchase_id}: ${n(d.cantidad)} × producto #${d.producto_id}, total ${formatMoney(Number(d.total))}${
        d.order_id ? ` (pedido #${d.order_id})` : ''
      }`;
    case 'purchase.cancelled':
      return `Compra #${d.purchase_id} cancelada: ${n(d.cantidad)} × producto #${d.producto_id} vuelven al stock`;
    case 'order.completed':
      return `Pedido #${d.order_id}: ${Array.isArray(d.lineas) ? d.lineas.length : '?'} líneas, total ${formatMoney(
        Number(d.total),
      )}`;
    case 'order.cancelled':
      return `Pedido #${d.order_id} cancelado`;
    case 'reservation.created':
      return `Reserva #${d.reservation_id} creada, caduca ${formatDate(String(d.expira_at))}`;
    case 'reservation.confirmed':
      return `Reserva #${d.reservation_id} confirmada como pedido #${d.order_id}`;
    case 'reservation.cancelled':
      return `Reserva #${d.reservation_id} cancelada`;
    case 'reservation.expired':
      return `Reserva #${d.reservation_id} caducada`;
    default:
      return JSON.stringify(d);
  }
}

const COLORS: Record<string, string> = {
  inventory: 'blue',
  purchase: 'teal',
  order: 'grape',
  reservation: 'orange',
};

export function LiveScreen() {
  const { events, status } = useLive();
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>En vivo</Title>
        <Text size="sm" c="dimmed">
          Conexión: {status}
        </Text>
      </Group>
      {status === 'no disponible' && (
        <Text c="red" role="alert">
          El flujo de eventos no está disponible en este servidor.
        </Text>
      )}
      <Stack gap="xs" role="log" aria-label="Eventos recibidos" aria-live="polite">
        {events.length === 0 ? (
          <Empty>Esperando eventos… Compre, ajuste stock o reserve y aparecerán aquí.</Empty>
        ) : (
          events.map((event) => (
            <Paper key={event.id} withBorder p="xs" component="article">
              <Group gap="xs" wrap="wrap">
                <Badge color={COLORS[event.type.split('.')[0] ?? ''] ?? 'gray'} variant="light">
                  {event.type}
                </Badge>
                <Text size="xs" c="dimmed">
                  {formatDate(event.occurred_at)}
                </Text>
              </Group>
              <Text size="sm" mt={4}>
                {summarize(event)}
              </Text>
            </Paper>
          ))
        )}
      </Stack>
    </Stack>
  );
}
