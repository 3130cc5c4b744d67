import { Badge, Button, Stack, Table, Tabs, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { type QueryKey, useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import type { Page } from '../api/api.client';
import { formatDate, formatMoney, formatUnits } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Order, Purchase, Reservation } from '../api/api.types';
import { describeError } from '../api/api.words';
import { Empty, Failure, Loading } from '../common/common.states';

export function HistoryScreen() {
  return (
    <Stack>
      <Title order={2}>Historial</Title>
      <Tabs defaultValue="compras" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="compras">Compras</Tabs.Tab>
          <Tabs.Tab value="pedidos">Pedidos</Tabs.Tab>
          <Tabs.Tab value="reservas">Reservas</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="compras" pt="md">
          <Purchases />
        </Tabs.Panel>
        <Tabs.Panel value="pedidos" pt="md">
          <Orders />
        </Tabs.Panel>
        <Tabs.Panel value="reservas" pt="md">
          <Reservations />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

/** A keyset collection read page by page through `links.next`, newest first. */
function useKeyset<T>(queryKey: QueryKey, first: string) {
  const api = useApi();
  return useInfiniteQuery({
    queryKey,
    queryFn: ({ pageParam, signal }) => api.get<T[]>(pageParam ?? first, { signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last: Page<T[]>) => last.links?.next ?? undefined,
  });
}

/** An order's or reservation's lines in one cell: "2 × #7, 1 × #9". */
function linesText(lineas: { producto_id: number; cantidad: number }[]): string {
  return lineas.map((l) => `${formatUnits(l.cantidad)} × #${l.producto_id}`).join(', ');
}

function KeysetTable<T extends { id: string }>(props: {
  query: ReturnType<typeof useKeyset<T>>;
  label: string;
  empty: string;
  minWidth: number;
  /** Column titles; numeric columns are aligned right. */
  columns: { title: string; numeric?: boolean }[];
  row: (item: T) => ReactNode;
}) {
  const { query } = props;
  if (query.isPending) return <Loading label="Cargando…" />;
  if (query.isError) return <Failure error={query.error} onRetry={() => void query.refetch()} />;
  const items = query.data.pages.flatMap((page) => page.data);
  if (items.length === 0) return <Empty>{props.empty}</Empty>;
  return (
    <Stack>
      <Table.ScrollContainer minWidth={props.minWidth}>
        <Table striped aria-label={props.label}>
          <Table.Thead>
            <Table.Tr>
              {props.columns.map((column) => (
                <Table.Th key={column.title} ta={column.numeric ? 'right' : undefined}>
                  {column.title}
                </Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>{items.map(props.row)}</Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      {query.hasNextPage && (
        <Button
          variant="default"
          loading={query.isFetchingNextPage}
          onClick={() => void query.fetchNextPage()}
        >
          Cargar más
        </Button>
      )}
    </Stack>
  );
}

/** Cancels one resource with a PATCH of its `estado`; errors are shown in the row. */
function CancelButton(props: {
  path: string;
  type: string;
  id: string;
  estado: string;
  label: string;
  done: string;
  invalidate: string[];
}) {
  const api = useApi();
  const client = useQueryClient();
  const cancel = useMutation({
    mutationFn: () => api.patch(props.path, { type: props.type, id: props.id, estado: props.estado }),
    onSuccess: () => {
      notifications.show({ color: 'teal', message: props.done });
      for (const key of props.invalidate) void client.invalidateQueries({ queryKey: [key] });
    },
  });
  return (
    <>
      <Button
        size="compact-sm"
        variant="light"
        color="red"
        loading={cancel.isPending}
        onClick={() => !cancel.isPending && cancel.mutate()}
        aria-label={props.label}
      >
        Cancelar
      </Button>
      {cancel.isError && (
        <Text c="red" size="xs" role="alert">
          {describeError(cancel.error)}
        </Text>
      )}
    </>
  );
}

function Purchases() {
  const query = useKeyset<Purchase>(['purchases'], '/api/purchases?page[size]=50');
  return (
    <KeysetTable
      query={query}
      label="Compras"
      empty="Todavía no hay compras."
      minWidth={720}
      columns={[
        { title: 'Compra' },
        { title: 'Fecha' },
        { title: 'Producto' },
        { title: 'Unidades', numeric: true },
        { title: 'Precio', numeric: true },
        { title: 'Total', numeric: true },
        { title: 'Estado' },
        { title: 'Acciones' },
      ]}
      row={(p) => (
        <Table.Tr key={p.id}>
          <Table.Td>#{p.id}</Table.Td>
          <Table.Td>{formatDate(p.created_at)}</Table.Td>
          <Table.Td>#{p.producto_id}</Table.Td>
          <Table.Td ta="right">{formatUnits(p.cantidad)}</Table.Td>
          <Table.Td ta="right">{formatMoney(p.precio_unitario)}</Table.Td>
          <Table.Td ta="right">{formatMoney(p.total)}</Table.Td>
          <Table.Td>
            <Badge color={p.estado === 'cancelada' ? 'gray' : 'teal'} variant="light">
              {p.estado}
            </Badge>
            {p.order && (
              <Text size="xs" c="dimmed">
                pedido #{p.order.id}
              </Text>
            )}
          </Table.Td>
          <Table.Td>
            {p.estado === 'completada' && !p.order && (
              <CancelButton
                path={`/api/purchases/${p.id}`}
                type="purchases"
                id={p.id}
                estado="cancelada"
                label={`Cancelar compra ${p.id}`}
                done={`Compra #${p.id} cancelada: las unidades vuelven al stock`}
                invalidate={['purchases', 'inventory', 'stock-list']}
              />
            )}
          </Table.Td>
        </Table.Tr>
      )}
    />
  );
}

function Orders() {
  const query = useKeyset<Order>(['orders'], '/api/orders?page[size]=50');
  return (
    <KeysetTable
      query={query}
      label="Pedidos"
      empty="Todavía no hay pedidos."
      minWidth={640}
      columns={[
        { title: 'Pedido' },
        { title: 'Fecha' },
        { title: 'Líneas' },
        { title: 'Total', numeric: true },
        { title: 'Estado' },
        { title: 'Acciones' },
      ]}
      row={(o) => (
        <Table.Tr key={o.id}>
          <Table.Td>#{o.id}</Table.Td>
          <Table.Td>{formatDate(o.created_at)}</Table.Td>
          <Table.Td>{linesText(o.lineas)}</Table.Td>
          <Table.Td ta="right">{formatMoney(o.total)}</Table.Td>
          <Table.Td>
            <Badge color={o.cancelado_at ? 'gray' : 'teal'} variant="light">
              {o.cancelado_at ? 'cancelado' : o.estado}
            </Badge>
          </Table.Td>
          <Table.Td>
            {!o.cancelado_at && (
              <CancelButton
                path={`/api/orders/${o.id}`}
                type="orders"
                id={o.id}
                estado="cancelado"
                label={`Cancelar pedido ${o.id}`}
                done={`Pedido #${o.id} cancelado: las unidades vuelven al stock`}
                invalidate={['orders', 'purchases', 'inventory', 'stock-list']}
              />
            )}
          </Table.Td>
        </Table.Tr>
      )}
    />
  );
}

const RESERVATION_COLORS: Record<Reservation['estado'], string> = {
  activa: 'teal',
  confirmada: 'blue',
  cancelada: 'gray',
  expirada: 'orange',
};

function Reservations() {
  const query = useKeyset<Reservation>(['reservations', 'all'], '/api/reservations?page[size]=50');
  return (
    <KeysetTable
      query={query}
      label="Reservas"
      empty="Todavía no hay reservas."
      minWidth={640}
      columns={[
        { title: 'Reserva' },
        { title: 'Fecha' },
        { title: 'Líneas' },
        { title: 'Total', numeric: true },
        { title: 'Caduca' },
        { title: 'Estado' },
      ]}
      row={(r) => (
        <Table.Tr key={r.id}>
          <Table.Td>#{r.id}</Table.Td>
          <Table.Td>{formatDate(r.created_at)}</Table.Td>
          <Table.Td>{linesText(r.lineas)}</Table.Td>
          <Table.Td ta="right">{formatMoney(r.total)}</Table.Td>
          <Table.Td>{formatDate(r.expira_at)}</Table.Td>
          <Table.Td>
            <Badge color={RESERVATION_COLORS[r.estado]} variant="light">
              {r.estado}
            </Badge>
            {r.order && (
              <Text size="xs" c="dimmed">
                pedido #{r.order.id}
              </Text>
            )}
          </Table.Td>
        </Table.Tr>
      )}
    />
  );
}
