import { SimpleGrid, Stack, Title } from '@mantine/core';
import { BuyOne } from './sell.buy';
import { Cart } from './sell.cart';
import { ActiveReservations } from './sell.reservations';

export function SellScreen() {
  return (
    <Stack>
      <Title order={2}>Vender</Title>
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <BuyOne />
        <Cart />
      </SimpleGrid>
      <ActiveReservations />
    </Stack>
  );
}
