import { Alert, Button, Group, Modal, NumberInput, Stack, Textarea, TextInput } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useApi } from '../api/api.session';
import type { Product } from '../api/api.types';
import { describeError, fieldErrors } from '../api/api.words';

/**
 * Creates a product, or edits one. Nothing is checked here that the service checks: its
 * validation errors come back with a pointer, and each is shown under the field it names.
 */
export function ProductForm(props: { product?: Product; opened: boolean; onClose: () => void }) {
  const { product } = props;
  return (
    <Modal
      opened={props.opened}
      onClose={props.onClose}
      title={product ? `Editar producto ${product.id}` : 'Nuevo producto'}
    >
      {props.opened && <ProductFields product={product} onDone={props.onClose} />}
    </Modal>
  );
}

function ProductFields(props: { product?: Product; onDone: () => void }) {
  const { product } = props;
  const api = useApi();
  const client = useQueryClient();
  const [nombre, setNombre] = useState(product?.nombre ?? '');
  const [precio, setPrecio] = useState<number | string>(product?.precio ?? '');
  const [descripcion, setDescripcion] = useState(product?.descripcion ?? '');

  const save = useMutation({
    mutationFn: () => {
      const attributes: Record<string, unknown> = {
        nombre,
        descripcion: descripcion.trim() ? descripcion : null,
      };
      // An empty price is left out, so the service names it as missing under the field.
      if (precio !== '') attributes.precio = typeof precio === 'number' ? precio : Number(precio);
      return product
        ? api.patch<Product>(`/api/products/${product.id}`, {
            type: 'products',
            id: product.id,
            ...attributes,
          })
        : api.post<Product>('/api/products', { type: 'products', ...attributes });
    },
    onSuccess: ({ data }) => {
      void client.invalidateQueries({ queryKey: ['products'] });
      notifications.show({
        color: 'teal',
        message: product ? `Producto «${data.nombre}» guardado` : `Producto «${data.nombre}» creado`,
      });
      props.onDone();
    },
  });

  const errors = fieldErrors(save.error);
  const general = save.error && Object.keys(errors).length === 0 ? describeError(save.error) : undefined;

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate();
  }

  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <TextInput
          label="Nombre"
          value={nombre}
          onChange={(e) => setNombre(e.currentTarget.value)}
          error={errors.nombre}
          data-autofocus
        />
        <NumberInput
          label="Precio (€)"
          value={precio}
          onChange={setPrecio}
          decimalSeparator=","
          thousandSeparator="."
          allowNegative
          error={errors.precio}
        />
        <Textarea
          label="Descripción"
          value={descripcion}
          onChange={(e) => setDescripcion(e.currentTarget.value)}
          error={errors.descripcion}
          autosize
          minRows={2}
        />
        {general && (
          <Alert color="red" role="alert">
            {general}
          </Alert>
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={props.onDone}>
            Cancelar
          </Button>
          <Button type="submit" loading={save.isPending}>
            {product ? 'Guardar' : 'Crear'}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
