import { Badge } from '@mantine/core';
import { LOW_STOCK } from '../api/api.format';

/** Low stock at a glance: sold out in red, low in orange, otherwise nothing to see. */
export function StockBadge(props: { cantidad: number }) {
  if (props.cantidad === 0) return <Badge color="red">Agotado</Badge>;
  if (props.cantidad <= LOW_STOCK) return <Badge color="orange">Stock bajo</Badge>;
  return null;
}
