import { AppShell, Badge, Burger, Button, Group, NavLink, Text, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import type { ReactNode } from 'react';
import { useSignOut } from '../api/api.session';
import { type LiveStatus, useLive } from '../live/live.context';
import { href, type Route } from './shell.route';

const SCREENS: { screen: Route['screen']; label: string }[] = [
  { screen: 'productos', label: 'Productos' },
  { screen: 'stock', label: 'Stock' },
  { screen: 'vender', label: 'Vender' },
  { screen: 'historial', label: 'Historial' },
  { screen: 'en-vivo', label: 'En vivo' },
  { screen: 'sistema', label: 'Sistema' },
];

const STATUS_COLOR: Record<LiveStatus, string> = {
  conectando: 'gray',
  conectado: 'green',
  reconectando: 'yellow',
  'no disponible': 'red',
};

export function Layout(props: { route: Route; children: ReactNode }) {
  const [opened, { toggle, close }] = useDisclosure(false);
  const signOut = useSignOut();
  const { status } = useLive();

  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 200, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger
              opened={opened}
              onClick={toggle}
              hiddenFrom="sm"
              size="sm"
              aria-label={opened ? 'Cerrar menú' : 'Abrir menú'}
            />
            <Title order={1} size="h4">
              Catálogo
            </Title>
          </Group>
          <Group gap="xs" wrap="nowrap">
            <Badge color={STATUS_COLOR[status]} variant="dot" aria-label={`Eventos en vivo: ${status}`}>
              <Text span size="xs" visibleFrom="xs">
                En vivo: {status}
              </Text>
            </Badge>
            <Button variant="subtle" size="xs" onClick={() => signOut()}>
              Salir
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Secciones">
        {SCREENS.map(({ screen, label }) => (
          <NavLink
            key={screen}
            href={href(screen)}
            label={label}
            active={props.route.screen === screen}
            aria-current={props.route.screen === screen ? 'page' : undefined}
            onClick={close}
          />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>{props.children}</AppShell.Main>
    </AppShell>
  );
}
