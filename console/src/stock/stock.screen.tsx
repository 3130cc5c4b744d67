import { Anchor, Button, Group, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { formatUnits, LOW_STOCK } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Inventory, Product } from '../api/api.types';
import { ProductPicker } from '../common/common.product-picker';
import { Empty, Failure, Loading } from '../common/common.states';
import { href } from '../shell/shell.route';
import { StockBadge } from './stock.badge';

const PAGE_SIZE = 50;

/** Every stock row, by product id, with low stock flagged; and a way to open any product's stock. */
export function StockScreen() {
  const api = useApi();
  const [picked, setPicked] = useState<Product | null>(null);
  const rows = useInfiniteQuery({
    queryKey: ['stock-list'],
    queryFn: ({ pageParam, signal }) =>
      api.get<Inventory[]>(pageParam ?? `/api/inventory?page[size]=${PAGE_SIZE}`, { signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.links?.next ?? undefined,
  });
  const inventories = rows.data?.pages.flatMap((page) => page.data) ?? [];
  const ids = inventories.map((row) => row.id);
  // The inventory list holds no product data: one request names the products on screen (≤ 100 ids).
  const names = useQuery({
    queryKey: ['products', 'names', ids.slice(0, 100).join(',')],
    enabled: ids.length > 0,
    queryFn: ({ signal }) =>
      api.get<Product[]>(`/api/products?filter[id]=${ids.slice(0, 100).join(',')}&page[size]=100`, {
        signal,
      }),
  });
  const nameOf = new Map(names.data?.data.map((p) => [p.id, p.nombre]));
  const low = inventories.filter((row) => row.cantidad <= LOW_STOCK).length;

  return (
    <Stack>
      <Title order={2}>Stock</Title>
      <Paper withBorder p="md">
        <Group align="flex-end" wrap="wrap">
          <ProductPicker label="Producto" value={picked} onChange={setPicked} />
          <Button component="a" href={picked ? href('stock', picked.id) : undefined} disabled={!picked}>
            Ver stock
          </Button>
        </Group>
      </Paper>
      {rows.isPending ? (
        <Loading label="Cargando stock…" />
      ) : rows.isError ? (
        <Failure error={rows.error} onRetry={() => void rows.refetch()} />
      ) : inventories.length === 0 ? (
        <Empty>Ningún producto tiene stock todavía. Elija uno arriba para fijarlo.</Empty>
      ) : (
        <>
          <Text size="sm" c={low > 0 ? 'orange' : 'dimmed'}>
            {low > 0
              ? `${low} ${low === 1 ? 'producto con' : 'productos con'} ${LOW_STOCK} unidades o menos`
              : 'Ningún producto con stock bajo'}
          </Text>
          <Table.ScrollContainer minWidth={480}>
            <Table striped highlightOnHover aria-label="Stock por producto">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Producto</Table.Th>
                  <Table.Th ta="right">Cantidad</Table.Th>
                  <Table.Th ta="right">Reservado</Table.Th>
                  <Table.Th>Estado</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {inventories.map((row) => (
                  <Table.Tr key={row.id}>
                    <Table.Td>
                      <Anchor href={href('stock', row.id)}>
                        {nameOf.get(row.id) ?? `Producto ${row.id}`} · #{row.id}
                      </Anchor>
                    </Table.Td>
                    <Table.Td ta="right">{formatUnits(row.cantidad)}</Table.Td>
                    <Table.Td ta="right">{formatUnits(row.reservado)}</Table.Td>
                    <Table.Td>
                      <StockBadge cantidad={row.cantidad} />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          {rows.hasNextPage && (
            <Button
              variant="default"
              loading={rows.isFetchingNextPage}
              onClick={() => void rows.fetchNextPage()}
            >
              Cargar más
            </Button>
          )}
        </>
      )}
    </Stack>
  );
}
