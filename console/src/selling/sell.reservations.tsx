import { Badge, Button, Group, Paper, Stack, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { formatMoney, formatUnits } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Reservation } from '../api/api.types';
import { describeError } from '../api/api.words';
import { Empty, Failure, Loading } from '../common/common.states';

/** Active reservations, each counting down to its expiry, to confirm (sell) or cancel (release). */
export function ActiveReservations() {
  const api = useApi();
  const reservations = useQuery({
    queryKey: ['reservations', 'activa'],
    queryFn: ({ signal }) =>
      api.get<Reservation[]>('/api/reservations?filter[estado]=activa&page[size]=50', { signal }),
  });
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  return (
    <Paper withBorder p="md" aria-labelledby="reservas-title">
      <Stack gap="sm">
        <Title order={3} size="h4" id="reservas-title">
          Reservas activas
        </Title>
        {reservations.isPending ? (
          <Loading label="Cargando reservas…" />
        ) : reservations.isError ? (
          <Failure error={reservations.error} onRetry={() => void reservations.refetch()} />
        ) : reservations.data.data.length === 0 ? (
          <Empty>No hay reservas activas.</Empty>
        ) : (
          reservations.data.data.map((reservation) => (
            <ReservationCard key={reservation.id} reservation={reservation} now={now} />
          ))
        )}
      </Stack>
    </Paper>
  );
}

function remaining(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, '0')}`;
}

function ReservationCard(props: { reservation: Reservation; now: number }) {
  const { reservation } = props;
  const api = useApi();
  const client = useQueryClient();
  const left = Date.parse(reservation.expira_at) - props.now;
  const expired = left <= 0;
  const decide = useMutation({
    mutationFn: (estado: 'confirmada' | 'cancelada') =>
      api.patch<Reservation>(`/api/reservations/${reservation.id}`, {
        type: 'reservations',
        id: reservation.id,
        estado,
      }),
    onSuccess: ({ data }) => {
      notifications.show({
        color: 'teal',
        message:
          data.estado === 'confirmada'
            ? `Reserva #${data.id} confirmada: vendida como pedido #${data.order?.id ?? '?'}`
            : `Reserva #${data.id} cancelada: las unidades vuelven al stock`,
      });
      void client.invalidateQueries({ queryKey: ['reservations'] });
      void client.invalidateQueries({ queryKey: ['orders'] });
      for (const line of data.lineas)
        void client.invalidateQueries({ queryKey: ['inventory', String(line.producto_id)] });
    },
  });
  // Past its expiry the service releases it within seconds: read the list again to see it go.
  useEffect(() => {
    if (!expired) return;
    const timer = setTimeout(() => void client.invalidateQueries({ queryKey: ['reservations'] }), 5_000);
    return () => clearTimeout(timer);
  }, [expired, client]);

  return (
    <Paper withBorder p="sm" aria-label={`Reserva ${reservation.id}`} component="article">
      <Group justify="space-between" wrap="wrap">
        <Text fw={600}>Reserva #{reservation.id}</Text>
        <Badge color={expired ? 'red' : left < 60_000 ? 'orange' : 'teal'} variant="light" role="timer">
          {expired ? 'Caducada' : `Caduca en ${remaining(left)}`}
        </Badge>
      </Group>
      <Text size="sm">
        {reservation.lineas
          .map((line) => `${formatUnits(line.cantidad)} × producto #${line.producto_id}`)
          .join(', ')}{' '}
        · total {formatMoney(reservation.total)}
      </Text>
      {decide.isError && (
        <Text c="red" size="sm" role="alert">
          {describeError(decide.error)}
        </Text>
      )}
      <Group mt="xs">
        <Button
          size="xs"
          disabled={expired}
          loading={decide.isPending && decide.variables === 'confirmada'}
          onClick={() => !decide.isPending && decide.mutate('confirmada')}
          aria-label={`Confirmar reserva ${reservation.id}`}
        >
          Confirmar
        </Button>
        <Button
          size="xs"
          variant="light"
          color="red"
          disabled={expired}
          loading={decide.isPending && decide.variables === 'cancelada'}
          onClick={() => !decide.isPending && decide.mutate('cancelada')}
          aria-label={`Cancelar reserva ${reservation.id}`}
        >
          Cancelar
        </Button>
      </Group>
    </Paper>
  );
}
