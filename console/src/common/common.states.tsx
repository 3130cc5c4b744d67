import { Alert, Button, Center, Group, Loader, Text } from '@mantine/core';
import { describeError } from '../api/api.words';

export function Loading(props: { label: string }) {
  return (
    <Center py="xl" role="status" aria-live="polite">
      <Group gap="sm">
        <Loader size="sm" />
        <Text c="dimmed">{props.label}</Text>
      </Group>
    </Center>
  );
}

export function Empty(props: { children: string }) {
  return (
    <Text c="dimmed" ta="center" py="xl">
      {props.children}
    </Text>
  );
}

/** A failed read or write, in plain words, with a retry when there is something to retry. */
export function Failure(props: { error: unknown; onRetry?: () => void; title?: string }) {
  return (
    <Alert color="red" title={props.title ?? 'No se pudo completar'} role="alert">
      <Text size="sm">{describeError(props.error)}</Text>
      {props.onRetry && (
        <Button mt="sm" size="xs" variant="light" color="red" onClick={props.onRetry}>
          Reintentar
        </Button>
      )}
    </Alert>
  );
}
