import {
  Anchor,
  Button,
  Group,
  Modal,
  Pagination,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { notifications } from '@mantine/notifications';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { formatMoney } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Product } from '../api/api.types';
import { Empty, Failure, Loading } from '../common/common.states';
import { href } from '../shell/shell.route';
import { ProductForm } from './products.form';

const PAGE_SIZE = 20;
const SORTS = [
  { value: 'id', label: 'Alta (más antiguos)' },
  { value: '-created_at', label: 'Alta (más recientes)' },
  { value: 'nombre', label: 'Nombre (A–Z)' },
  { value: '-nombre', label: 'Nombre (Z–A)' },
  { value: 'precio', label: 'Precio (menor primero)' },
  { value: '-precio', label: 'Precio (mayor primero)' },
];

export function ProductsScreen() {
  const api = useApi();
  const [search, setSearch] = useState('');
  const [term] = useDebouncedValue(search.trim(), 300);
  const [sort, setSort] = useState('id');
  const [page, setPage] = useState(1);
  const [editing, setEditing] = useState<Product | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Product | null>(null);

  const params = new URLSearchParams({ 'page[number]': String(page), 'page[size]': String(PAGE_SIZE), sort });
  if (term) params.set('filter[nombre]', term);
  const products = useQuery({
    queryKey: ['products', 'list', term, sort, page],
    queryFn: ({ signal }) => api.get<Product[]>(`/api/products?${params}`, { signal }),
    placeholderData: keepPreviousData,
  });
  const total = Number(products.data?.meta?.total ?? 0);
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Productos</Title>
        <Button onClick={() => setEditing('new')}>Nuevo producto</Button>
      </Group>
      <Group grow preventGrowOverflow={false} wrap="wrap">
        <TextInput
          label="Buscar por nombre"
          type="search"
          value={search}
          onChange={(e) => {
            setSearch(e.currentTarget.value);
            setPage(1);
          }}
          miw={200}
        />
        <Select
          label="Ordenar por"
          data={SORTS}
          value={sort}
          onChange={(value) => {
            setSort(value ?? 'id');
            setPage(1);
          }}
          allowDeselect={false}
          miw={200}
        />
      </Group>
      {products.isPending ? (
        <Loading label="Cargando productos…" />
      ) : products.isError ? (
        <Failure error={products.error} onRetry={() => void products.refetch()} />
      ) : products.data.data.length === 0 ? (
        <Empty>
          {term ? `Ningún producto contiene «${term}».` : 'No hay productos todavía. Cree el primero.'}
        </Empty>
      ) : (
        <>
          <Text size="sm" c="dimmed" aria-live="polite">
            {total === 1 ? '1 producto' : `${total} productos`}
          </Text>
          <Table.ScrollContainer minWidth={560}>
            <Table striped highlightOnHover aria-label="Productos">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Id</Table.Th>
                  <Table.Th>Nombre</Table.Th>
                  <Table.Th ta="right">Precio</Table.Th>
                  <Table.Th>Descripción</Table.Th>
                  <Table.Th>Acciones</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {products.data.data.map((product) => (
                  <Table.Tr key={product.id}>
                    <Table.Td>{product.id}</Table.Td>
                    <Table.Td>{product.nombre}</Table.Td>
                    <Table.Td ta="right">{formatMoney(product.precio)}</Table.Td>
                    <Table.Td>
                      <Text size="sm" lineClamp={1} maw={260}>
                        {product.descripcion ?? '—'}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      <Group gap={4} wrap="nowrap">
                        <Button
                          size="compact-sm"
                          variant="light"
                          onClick={() => setEditing(product)}
                          aria-label={`Editar ${product.nombre}`}
                        >
                          Editar
                        </Button>
                        <Button
                          size="compact-sm"
                          variant="light"
                          component="a"
                          href={href('stock', product.id)}
                          aria-label={`Stock de ${product.nombre}`}
                        >
                          Stock
                        </Button>
                        <Button
                          size="compact-sm"
                          variant="light"
                          color="red"
                          onClick={() => setDeleting(product)}
                          aria-label={`Eliminar ${product.nombre}`}
                        >
                          Eliminar
                        </Button>
                      </Group>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          {pages > 1 && (
            <Pagination
              total={pages}
              value={page}
              onChange={setPage}
              getControlProps={(control) => ({
                'aria-label':
                  control === 'previous'
                    ? 'Página anterior'
                    : control === 'next'
                      ? 'Página siguiente'
                      : control,
              })}
              getItemProps={(item) => ({ 'aria-label': `Página ${item}` })}
            />
          )}
        </>
      )}
      <ProductForm
        opened={editing !== null}
        product={editing === 'new' || editing === null ? undefined : editing}
        onClose={() => setEditing(null)}
      />
      <DeleteProduct product={deleting} onClose={() => setDeleting(null)} />
      <Text size="xs" c="dimmed">
        ¿Buscas el stock? Está en <Anchor href={href('stock')}>Stock</Anchor>.
      </Text>
    </Stack>
  );
}

function DeleteProduct(props: { product: Product | null; onClose: () => void }) {
  const api = useApi();
  const client = useQueryClient();
  const remove = useMutation({
    mutationFn: (product: Product) => api.delete(`/api/products/${product.id}`),
    onSuccess: (_, product) => {
      void client.invalidateQueries({ queryKey: ['products'] });
      notifications.show({ color: 'teal', message: `Producto «${product.nombre}» eliminado` });
      props.onClose();
    },
  });
  const { product } = props;
  return (
    <Modal
      opened={product !== null}
      onClose={() => {
        remove.reset();
        props.onClose();
      }}
      title="Eliminar producto"
    >
      {product && (
        <Stack>
          <Text>¿Eliminar «{product.nombre}»? No se puede deshacer.</Text>
          {remove.isError && <Failure error={remove.error} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={props.onClose}>
              Cancelar
            </Button>
            <Button color="red" loading={remove.isPending} onClick={() => remove.mutate(product)}>
              Eliminar
            </Button>
          </Group>
        </Stack>
      )}
    </Modal>
  );
}
