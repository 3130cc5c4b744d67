import { Alert, Button, NumberInput, Paper, Stack, Title } from '@mantine/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { formatMoney, formatUnits } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Product, Purchase } from '../api/api.types';
import { describeError, fieldErrors } from '../api/api.words';
import { ProductPicker } from '../common/common.product-picker';
import { IN_FLIGHT_RETRY, useIdempotencyKey } from './sell.idempotency';

export function BuyOne() {
  const api = useApi();
  const client = useQueryClient();
  const idempotency = useIdempotencyKey();
  const [product, setProduct] = useState<Product | null>(null);
  const [cantidad, setCantidad] = useState<number | string>(1);
  const buy = useMutation({
    ...IN_FLIGHT_RETRY,
    mutationFn: () =>
      api.post<Purchase>(
        '/api/purchases',
        {
          type: 'purchases',
          producto_id: product ? Number(product.id) : undefined,
          cantidad: cantidad === '' ? undefined : Number(cantidad),
        },
        { headers: { 'Idempotency-Key': idempotency.current() } },
      ),
    onError: idempotency.settled,
    onSuccess: () => {
      idempotency.renew();
      void client.invalidateQueries({ queryKey: ['purchases'] });
      if (product) void client.invalidateQueries({ queryKey: ['inventory', product.id] });
    },
  });
  const errors = fieldErrors(buy.error);
  const changed = () => {
    idempotency.renew();
    buy.reset();
  };

  function submit(event: FormEvent) {
    event.preventDefault();
    // A click while the first send is under way is the same intent: it is not sent again.
    if (idempotency.sending.current) return;
    idempotency.sending.current = true;
    buy.mutate(undefined, { onSettled: () => (idempotency.sending.current = false) });
  }

  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} noValidate aria-labelledby="comprar-title">
      <Stack gap="sm">
        <Title order={3} size="h4" id="comprar-title">
          Comprar un producto
        </Title>
        <ProductPicker
          label="Producto a comprar"
          value={product}
          onChange={(next) => {
            setProduct(next);
            changed();
          }}
          error={errors.producto_id}
        />
        <NumberInput
          label="Unidades"
          value={cantidad}
          onChange={(next) => {
            setCantidad(next);
            changed();
          }}
          min={1}
          allowDecimal={false}
          error={errors.cantidad}
        />
        {buy.isError && (
          <Alert color="red" role="alert" title="Compra rechazada">
            {describeError(buy.error)}
          </Alert>
        )}
        {buy.isSuccess && (
          <Alert color="teal" role="status" title="Compra realizada">
            Compra #{buy.data.data.id}: {formatUnits(buy.data.data.cantidad)} ×{' '}
            {formatMoney(buy.data.data.precio_unitario)} = {formatMoney(buy.data.data.total)}
          </Alert>
        )}
        <Button type="submit" loading={buy.isPending}>
          Comprar
        </Button>
      </Stack>
    </Paper>
  );
}
