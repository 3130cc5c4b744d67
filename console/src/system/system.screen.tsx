import { Badge, Group, Paper, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { formatUnits } from '../api/api.format';
import { useApi } from '../api/api.session';
import { Failure, Loading } from '../common/common.states';
import { metricValue } from './system.metrics';

const REFRESH_MS = 5_000;

interface Health {
  status: string;
  checks?: Record<string, string>;
}

const BREAKER: Record<number, { label: string; color: string; help: string }> = {
  0: { label: 'Cerrado', color: 'green', help: 'Las peticiones a Productos pasan con normalidad.' },
  1: {
    label: 'Abierto',
    color: 'red',
    help: 'Productos falló repetidamente: Inventario responde 503 sin llamarlo hasta que se recupere.',
  },
  2: { label: 'Semiabierto', color: 'yellow', help: 'Probando si Productos se ha recuperado.' },
};

/** Health is read with plain fetches: a 503 carries the failing checks in its body. */
function useHealth(path: string) {
  const api = useApi();
  return useQuery({
    queryKey: ['system', path],
    queryFn: async () => {
      const { status, body } = await api.text(path);
      try {
        return { http: status, health: JSON.parse(body) as Health };
      } catch {
        return { http: status, health: undefined };
      }
    },
    refetchInterval: REFRESH_MS,
  });
}

function HealthCard(props: { title: string; path: string }) {
  const query = useHealth(props.path);
  return (
    <Paper withBorder p="md" aria-label={props.title} component="section">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h4">
          {props.title}
        </Title>
        {query.data && (
          <Badge color={query.data.http === 200 ? 'green' : 'red'}>
            {query.data.http === 200 ? 'Disponible' : query.data.http === 404 ? 'Sin datos' : 'No disponible'}
          </Badge>
        )}
      </Group>
      {query.isPending ? (
        <Loading label="Comprobando…" />
      ) : query.isError ? (
        <Failure error={query.error} />
      ) : query.data.health?.checks ? (
        <Table>
          <Table.Tbody>
            {Object.entries(query.data.health.checks).map(([check, value]) => (
              <Table.Tr key={check}>
                <Table.Td>{CHECKS[check] ?? check}</Table.Td>
                <Table.Td>
                  <Badge color={value === 'ok' ? 'green' : 'red'} variant="light">
                    {value}
                  </Badge>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      ) : (
        <Text size="sm" c="dimmed">
          {query.data.http === 404
            ? 'Este servidor no publica esta comprobación.'
            : `Respuesta HTTP ${query.data.http}`}
        </Text>
      )}
    </Paper>
  );
}

const CHECKS: Record<string, string> = {
  database: 'Base de datos',
  products: 'Servicio de productos',
  inventory: 'Servicio de inventario',
};

function InventoryMetrics() {
  const api = useApi();
  const metrics = useQuery({
    queryKey: ['system', 'inventory-metrics'],
    queryFn: async () => {
      const { status, body } = await api.text('/services/inventory/metrics');
      if (status !== 200) throw new Error(`HTTP ${status}`);
      return {
        breaker: metricValue(body, 'products_circuit_breaker_state'),
        backlog: metricValue(body, 'outbox_pending'),
        oldest: metricValue(body, 'outbox_oldest_pending_age_seconds'),
        reservations: metricValue(body, 'reservations_active'),
      };
    },
    refetchInterval: REFRESH_MS,
  });
  if (metrics.isPending) return <Loading label="Leyendo métricas…" />;
  if (metrics.isError)
    return (
      <Text c="red" role="alert">
        No se pudieron leer las métricas del servicio de inventario. Se reintentará en unos segundos.
      </Text>
    );
  const breaker = metrics.data.breaker === undefined ? undefined : BREAKER[metrics.data.breaker];
  return (
    <SimpleGrid cols={{ base: 1, sm: 3 }}>
      <Paper withBorder p="md" component="section" aria-label="Cortocircuito hacia Productos">
        <Text size="sm" c="dimmed">
          Cortocircuito hacia Productos
        </Text>
        <Badge size="lg" mt="xs" color={breaker?.color ?? 'gray'}>
          {breaker?.label ?? 'Desconocido'}
        </Badge>
        <Text size="xs" c="dimmed" mt="xs">
          {breaker?.help}
        </Text>
      </Paper>
      <Paper withBorder p="md" component="section" aria-label="Eventos pendientes de publicar">
        <Text size="sm" c="dimmed">
          Eventos pendientes de publicar
        </Text>
        <Text fz={28} fw={700}>
          {metrics.data.backlog === undefined ? '—' : formatUnits(metrics.data.backlog)}
        </Text>
        {metrics.data.oldest !== undefined && metrics.data.oldest > 0 && (
          <Text size="xs" c="dimmed">
            El más antiguo espera desde hace {formatUnits(Math.round(metrics.data.oldest))} s
          </Text>
        )}
      </Paper>
      <Paper withBorder p="md" component="section" aria-label="Reservas activas">
        <Text size="sm" c="dimmed">
          Reservas activas
        </Text>
        <Text fz={28} fw={700}>
          {metrics.data.reservations === undefined || Number.isNaN(metrics.data.reservations)
            ? '—'
            : formatUnits(metrics.data.reservations)}
        </Text>
      </Paper>
    </SimpleGrid>
  );
}

export function SystemScreen() {
  return (
    <Stack>
      <Title order={2}>Sistema</Title>
      <Text size="sm" c="dimmed">
        Se actualiza cada {REFRESH_MS / 1000} segundos.
      </Text>
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <HealthCard title="Pasarela" path="/health" />
        <HealthCard title="Productos" path="/services/products/health" />
        <HealthCard title="Inventario" path="/services/inventory/health" />
      </SimpleGrid>
      <InventoryMetrics />
    </Stack>
  );
}
