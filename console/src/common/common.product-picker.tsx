import { Select } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { formatMoney } from '../api/api.format';
import { useApi } from '../api/api.session';
import type { Product } from '../api/api.types';

const label = (product: Product) => `${product.nombre} (${formatMoney(product.precio)}) · #${product.id}`;

/** A searchable product field: the options are the service's search for what is typed. */
export function ProductPicker(props: {
  label: string;
  value: Product | null;
  onChange: (product: Product | null) => void;
  error?: string;
}) {
  const api = useApi();
  const [search, setSearch] = useState('');
  const [term] = useDebouncedValue(search.trim(), 250);
  // While the field shows the chosen product's label, list everything rather than search for it.
  const filter = props.value && search === label(props.value) ? '' : term;
  const products = useQuery({
    queryKey: ['products', 'picker', filter],
    queryFn: ({ signal }) => {
      const params = new URLSearchParams({ 'page[size]': '20', sort: 'nombre' });
      if (filter) params.set('filter[nombre]', filter);
      return api.get<Product[]>(`/api/products?${params}`, { signal });
    },
  });
  const options = products.data?.data ?? [];
  const all =
    props.value && !options.some((p) => p.id === props.value?.id) ? [props.value, ...options] : options;

  return (
    <Select
      label={props.label}
      placeholder="Escriba para buscar"
      searchable
      clearable
      filter={({ options: items }) => items}
      searchValue={search}
      onSearchChange={setSearch}
      data={all.map((product) => ({ value: product.id, label: label(product) }))}
      value={props.value?.id ?? null}
      onChange={(id) => props.onChange(all.find((p) => p.id === id) ?? null)}
      nothingFoundMessage={products.isFetching ? 'Buscando…' : 'Ningún producto coincide'}
      error={props.error}
      miw={240}
    />
  );
}
