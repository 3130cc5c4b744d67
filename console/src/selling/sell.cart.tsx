import {
  ActionIcon,
  Alert,
  Button,
  Group,
  NumberInput,
  Paper,
  Stack,
  Table,
  Text,
  Title,
  VisuallyHidden,
} from '@mantine/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import type { Page } from '../api/api.client';
import { formatMoney, formatUnits, lineTotal } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Order, Product, Reservation } from '../api/api.types';
import { describeError, fieldErrors } from '../api/api.words';
import { ProductPicker } from '../common/common.product-picker';
import { IN_FLIGHT_RETRY, useIdempotencyKey } from './sell.idempotency';

interface CartLine {
  product: Product;
  cantidad: number;
}

type Outcome = { kind: 'order'; order: Order } | { kind: 'reservation'; reservation: Reservation };

/** A cart of several products, checked out at once as an order, or reserved to confirm later. */
export function Cart() {
  const api = useApi();
  const client = useQueryClient();
  // One key per kind of checkout: an order and a reservation of the same cart are two intents.
  const keys = { order: useIdempotencyKey(), reservation: useIdempotencyKey() };
  const [lines, setLines] = useState<CartLine[]>([]);
  const [product, setProduct] = useState<Product | null>(null);
  const [cantidad, setCantidad] = useState<number | string>(1);
  const [expiraEn, setExpiraEn] = useState<number | string>(900);
  const [outcome, setOutcome] = useState<Outcome | null>(null);

  const lineas = lines.map((line) => ({ producto_id: Number(line.product.id), cantidad: line.cantidad }));
  const checkout = useMutation({
    ...IN_FLIGHT_RETRY,
    mutationFn: (kind: Outcome['kind']): Promise<Page<Order | Reservation>> => {
      const headers = { 'Idempotency-Key': keys[kind].current() };
      return kind === 'order'
        ? api.post<Order>('/api/orders', { type: 'orders', lineas }, { headers })
        : api.post<Reservation>(
            '/api/reservations',
            { type: 'reservations', lineas, expira_en: expiraEn === '' ? undefined : Number(expiraEn) },
            { headers },
          );
    },
    onError: (error, kind) => keys[kind].settled(error),
    onSuccess: (page, kind) => {
      keys[kind].renew();
      setOutcome(
        kind === 'order'
          ? { kind, order: page.data as Order }
          : { kind, reservation: page.data as Reservation },
      );
      setLines([]);
      for (const line of lines) void client.invalidateQueries({ queryKey: ['inventory', line.product.id] });
      void client.invalidateQueries({ queryKey: [kind === 'order' ? 'orders' : 'reservations'] });
      void client.invalidateQueries({ queryKey: ['purchases'] });
    },
  });
  const errors = fieldErrors(checkout.error);
  const edited = () => {
    keys.order.renew();
    keys.reservation.renew();
    checkout.reset();
    setOutcome(null);
  };

  function add(event: FormEvent) {
    event.preventDefault();
    const units = Number(cantidad);
    if (!product || !Number.isInteger(units) || units < 1) return;
    setLines((current) => {
      const existing = current.find((line) => line.product.id === product.id);
      return existing
        ? current.map((line) => (line === existing ? { ...line, cantidad: line.cantidad + units } : line))
        : [...current, { product, cantidad: units }];
    });
    setProduct(null);
    setCantidad(1);
    edited();
  }

  const send = (kind: Outcome['kind']) => {
    // One send per intent at a time, whichever button: a double click sends once.
    if (keys.order.sending.current) return;
    keys.order.sending.current = true;
    checkout.mutate(kind, { onSettled: () => (keys.order.sending.current = false) });
  };

  const estimate = lines.reduce((sum, line) => sum + lineTotal(line.product.precio, line.cantidad), 0);

  return (
    <Paper withBorder p="md" aria-labelledby="carrito-title">
      <Stack gap="sm">
        <Title order={3} size="h4" id="carrito-title">
          Carrito
        </Title>
        <form onSubmit={add} noValidate>
          <Group align="flex-end" wrap="wrap">
            <ProductPicker label="Producto para el carrito" value={product} onChange={setProduct} />
            <NumberInput
              label="Unidades para el carrito"
              value={cantidad}
              onChange={setCantidad}
              min={1}
              allowDecimal={false}
              w={160}
            />
            <Button type="submit" variant="light" disabled={!product}>
              Añadir al carrito
            </Button>
          </Group>
        </form>
        {lines.length === 0 ? (
          <Text c="dimmed" size="sm">
            El carrito está vacío.
          </Text>
        ) : (
          <Table.ScrollContainer minWidth={420}>
            <Table aria-label="Líneas del carrito">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Producto</Table.Th>
                  <Table.Th ta="right">Unidades</Table.Th>
                  <Table.Th ta="right">Importe</Table.Th>
                  <Table.Th>
                    <VisuallyHidden>Quitar</VisuallyHidden>
                  </Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {lines.map((line, i) => {
                  const problem = errors[`lineas/${i}/cantidad`] ?? errors[`lineas/${i}/producto_id`];
                  return (
                    <Table.Tr key={line.product.id}>
                      <Table.Td>
                        {line.product.nombre}
                        {problem && (
                          <Text c="red" size="sm" role="alert">
                            {problem}
                            {shortBy(checkout.error, i)}
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td ta="right">{formatUnits(line.cantidad)}</Table.Td>
                      <Table.Td ta="right">
                        {formatMoney(lineTotal(line.product.precio, line.cantidad))}
                      </Table.Td>
                      <Table.Td>
                        <ActionIcon
                          variant="subtle"
                          color="red"
                          aria-label={`Quitar ${line.product.nombre}`}
                          onClick={() => {
                            setLines((current) => current.filter((l) => l !== line));
                            edited();
                          }}
                        >
                          ×
                        </ActionIcon>
                      </Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
        {lines.length > 0 && <Text fw={600}>Total estimado: {formatMoney(estimate)}</Text>}
        <NumberInput
          label="La reserva caduca en (segundos)"
          value={expiraEn}
          onChange={(next) => {
            setExpiraEn(next);
            edited();
          }}
          min={1}
          max={86400}
          allowDecimal={false}
          error={errors.expira_en}
          w={260}
        />
        {checkout.isError && (
          <Alert color="red" role="alert" title="No se pudo completar">
            {describeError(checkout.error)}
          </Alert>
        )}
        {outcome?.kind === 'order' && (
          <Alert color="teal" role="status" title="Pedido realizado">
            Pedido #{outcome.order.id}: {outcome.order.lineas.length}{' '}
            {outcome.order.lineas.length === 1 ? 'línea' : 'líneas'}, total {formatMoney(outcome.order.total)}
          </Alert>
        )}
        {outcome?.kind === 'reservation' && (
          <Alert color="teal" role="status" title="Reserva creada">
            Reserva #{outcome.reservation.id}, total {formatMoney(outcome.reservation.total)}: confírmela o
            cancélela abajo.
          </Alert>
        )}
        <Group>
          <Button
            disabled={lines.length === 0}
            loading={checkout.isPending && checkout.variables === 'order'}
            onClick={() => send('order')}
          >
            Realizar pedido
          </Button>
          <Button
            variant="light"
            disabled={lines.length === 0}
            loading={checkout.isPending && checkout.variables === 'reservation'}
            onClick={() => send('reservation')}
          >
            Reservar
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

function shortBy(error: unknown, line: number): string {
  const errors = (error as { errors?: { source?: { pointer?: string }; meta?: { disponible?: unknown } }[] })
    ?.errors;
  const units = errors?.find((e) => e.source?.pointer === `/data/attributes/lineas/${line}/cantidad`)?.meta
    ?.disponible;
  return typeof units === 'number' ? ` (disponibles: ${formatUnits(units)})` : '';
}
