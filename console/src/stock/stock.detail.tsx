import {
  Alert,
  Anchor,
  Badge,
  Button,
  Group,
  NumberInput,
  Paper,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ApiError } from '../api/api.client';
import { CAUSAS, formatDate, formatMoney, formatUnits } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Inventory, Movement, Product } from '../api/api.types';
import { describeError, fieldErrors } from '../api/api.words';
import { Empty, Failure, Loading } from '../common/common.states';
import { href } from '../shell/shell.route';
import { StockBadge } from './stock.badge';
import { StockChart } from './stock.chart';

const signed = (n: number) => (n > 0 ? `+${formatUnits(n)}` : n === 0 ? '0' : formatUnits(n));

/** One product's stock: the figures, setting and adjusting them, the ledger and its chart. */
export function StockDetailScreen(props: { id: string }) {
  const api = useApi();
  const inventory = useQuery({
    queryKey: ['inventory', props.id],
    queryFn: ({ signal }) => api.get<Inventory>(`/api/inventory/${props.id}`, { signal }),
  });
  const movements = useInfiniteQuery({
    queryKey: ['movements', props.id],
    queryFn: ({ pageParam, signal }) =>
      api.get<Movement[]>(pageParam ?? `/api/inventory/${props.id}/movements?page[size]=50`, { signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.links?.next ?? undefined,
  });

  if (inventory.isPending) return <Loading label="Cargando stock…" />;
  if (inventory.isError)
    return (
      <Stack>
        <Anchor href={href('stock')}>← Stock</Anchor>
        <Failure error={inventory.error} onRetry={() => void inventory.refetch()} />
      </Stack>
    );
  const stock = inventory.data.data;
  const product = stock.product && 'nombre' in stock.product ? (stock.product as Product) : undefined;
  const ledger = movements.data?.pages.flatMap((page) => page.data) ?? [];

  return (
    <Stack>
      <Anchor href={href('stock')}>← Stock</Anchor>
      <Group justify="space-between" align="flex-start">
        <div>
          <Title order={2}>{product?.nombre ?? `Producto ${props.id}`}</Title>
          <Text c="dimmed" size="sm">
            #{props.id}
            {product && ` · ${formatMoney(product.precio)}`}
          </Text>
        </div>
        <StockBadge cantidad={stock.cantidad} />
      </Group>
      <SimpleGrid cols={{ base: 2, sm: 2 }} maw={480}>
        <Paper withBorder p="md">
          <Text size="sm" c="dimmed" id="cantidad-label">
            Cantidad disponible
          </Text>
          <Text fz={32} fw={700} aria-labelledby="cantidad-label" data-testid="cantidad">
            {formatUnits(stock.cantidad)}
          </Text>
        </Paper>
        <Paper withBorder p="md">
          <Text size="sm" c="dimmed" id="reservado-label">
            Reservado
          </Text>
          <Text fz={32} fw={700} aria-labelledby="reservado-label" data-testid="reservado">
            {formatUnits(stock.reservado)}
          </Text>
        </Paper>
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <SetStock id={props.id} current={stock.cantidad} etag={inventory.data.etag} />
        <AdjustStock id={props.id} />
      </SimpleGrid>
      <Paper withBorder p="md">
        <Title order={3} size="h4" mb="sm">
          Evolución del stock
        </Title>
        <StockChart movements={ledger} now={{ cantidad: stock.cantidad, reservado: stock.reservado }} />
      </Paper>
      <Title order={3} size="h4">
        Movimientos
      </Title>
      {movements.isPending ? (
        <Loading label="Cargando movimientos…" />
      ) : movements.isError ? (
        <Failure error={movements.error} onRetry={() => void movements.refetch()} />
      ) : ledger.length === 0 ? (
        <Empty>Este producto no tiene movimientos todavía.</Empty>
      ) : (
        <>
          <Table.ScrollContainer minWidth={640}>
            <Table striped aria-label="Movimientos de stock">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Fecha</Table.Th>
                  <Table.Th>Causa</Table.Th>
                  <Table.Th ta="right">Δ cantidad</Table.Th>
                  <Table.Th ta="right">Δ reservado</Table.Th>
                  <Table.Th ta="right">Cantidad</Table.Th>
                  <Table.Th ta="right">Reservado</Table.Th>
                  <Table.Th>Motivo u origen</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {ledger.map((m) => (
                  <Table.Tr key={m.id}>
                    <Table.Td>{formatDate(m.created_at)}</Table.Td>
                    <Table.Td>
                      <Badge variant="light">{CAUSAS[m.causa] ?? m.causa}</Badge>
                    </Table.Td>
                    <Table.Td ta="right">{signed(m.delta)}</Table.Td>
                    <Table.Td ta="right">{signed(m.delta_reservado)}</Table.Td>
                    <Table.Td ta="right">{formatUnits(m.cantidad)}</Table.Td>
                    <Table.Td ta="right">{formatUnits(m.reservado)}</Table.Td>
                    <Table.Td>
                      {m.reason ??
                        (m.source ? `${SOURCES[m.source.type] ?? m.source.type} ${m.source.id}` : '—')}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          {movements.hasNextPage && (
            <Button
              variant="default"
              loading={movements.isFetchingNextPage}
              onClick={() => void movements.fetchNextPage()}
            >
              Cargar más movimientos
            </Button>
          )}
        </>
      )}
    </Stack>
  );
}

const SOURCES: Record<string, string> = { purchases: 'Compra', orders: 'Pedido', reservations: 'Reserva' };

/** Sets `cantidad` with If-Match: a sale made since the figure was read is never overwritten. */
function SetStock(props: { id: string; current: number; etag?: string }) {
  const api = useApi();
  const client = useQueryClient();
  const [value, setValue] = useState<number | string>('');
  const set = useMutation({
    mutationFn: () =>
      api.patch<Inventory>(
        `/api/inventory/${props.id}`,
        { type: 'inventories', id: props.id, cantidad: value === '' ? undefined : Number(value) },
        { headers: props.etag ? { 'If-Match': props.etag } : {} },
      ),
    onSuccess: (page) => {
      client.setQueryData(['inventory', props.id], page);
      void client.invalidateQueries({ queryKey: ['movements', props.id] });
      void client.invalidateQueries({ queryKey: ['stock-list'] });
      notifications.show({ color: 'teal', message: `Cantidad fijada en ${formatUnits(page.data.cantidad)}` });
      setValue('');
    },
    onError: (error) => {
      if (error instanceof ApiError && error.status === 412)
        void client.invalidateQueries({ queryKey: ['inventory', props.id] });
    },
  });
  const errors = fieldErrors(set.error);
  function submit(event: FormEvent) {
    event.preventDefault();
    set.mutate();
  }
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} noValidate>
      <Stack gap="sm">
        <Title order={3} size="h4">
          Fijar cantidad
        </Title>
        <NumberInput
          label="Nueva cantidad"
          description={`Ahora: ${formatUnits(props.current)}`}
          value={value}
          onChange={setValue}
          allowDecimal={false}
          error={errors.cantidad}
        />
        {set.isError && !errors.cantidad && (
          <Alert color="red" role="alert">
            {describeError(set.error)}
          </Alert>
        )}
        <Button type="submit" loading={set.isPending}>
          Fijar
        </Button>
      </Stack>
    </Paper>
  );
}

function AdjustStock(props: { id: string }) {
  const api = useApi();
  const client = useQueryClient();
  const [delta, setDelta] = useState<number | string>('');
  const [reason, setReason] = useState('');
  const adjust = useMutation({
    mutationFn: () =>
      api.post<Inventory>(`/api/inventory/${props.id}/adjustments`, {
        type: 'inventory-adjustments',
        delta: delta === '' ? undefined : Number(delta),
        ...(reason.trim() ? { reason: reason.trim() } : {}),
      }),
    onSuccess: (page) => {
      client.setQueryData(['inventory', props.id], page);
      void client.invalidateQueries({ queryKey: ['movements', props.id] });
      void client.invalidateQueries({ queryKey: ['stock-list'] });
      notifications.show({
        color: 'teal',
        message: `Stock ajustado: ahora ${formatUnits(page.data.cantidad)}`,
      });
      setDelta('');
      setReason('');
    },
  });
  const errors = fieldErrors(adjust.error);
  function submit(event: FormEvent) {
    event.preventDefault();
    adjust.mutate();
  }
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} noValidate>
      <Stack gap="sm">
        <Title order={3} size="h4">
          Ajustar
        </Title>
        <NumberInput
          label="Unidades a sumar o restar"
          description="Negativo para restar (p. ej. −2)"
          value={delta}
          onChange={setDelta}
          allowDecimal={false}
          error={errors.delta}
        />
        <TextInput
          label="Motivo"
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          error={errors.reason}
        />
        {adjust.isError && !errors.delta && !errors.reason && (
          <Alert color="red" role="alert">
            {describeError(adjust.error)}
          </Alert>
        )}
        <Button type="submit" loading={adjust.isPending}>
          Ajustar
        </Button>
      </Stack>
    </Paper>
  );
}
