import { Alert, Button, Center, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { type FormEvent, useState } from 'react';
import { ApiError, createApiClient } from '../api/api.client';
import { describeError } from '../api/api.words';

/** Asks for the API key and checks it with one cheap read before keeping it. */
export function SignIn(props: { onSignIn: (key: string) => void; reason?: string }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [checking, setChecking] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const candidate = key.trim();
    if (!candidate) {
      setError('Escriba la API key.');
      return;
    }
    setChecking(true);
    setError(undefined);
    try {
      await createApiClient(candidate).get('/api/products?page[size]=1');
      props.onSignIn(candidate);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'La API key no es válida. Compruébela y vuelva a intentarlo.'
          : describeError(err),
      );
    } finally {
      setChecking(false);
    }
  }

  return (
    <Center mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" radius="md" w="100%" maw={420} component="main">
        <form onSubmit={submit} noValidate>
          <Stack>
            <Title order={1} size="h2">
              Catálogo · Consola
            </Title>
            <Text c="dimmed" size="sm">
              Introduzca una API key de los servicios (con <code>npm start</code> sin API_KEYS, la de
              desarrollo que muestra al arrancar).
            </Text>
            {props.reason && (
              <Alert color="yellow" role="status">
                {props.reason}
              </Alert>
            )}
            <PasswordInput
              label="API key"
              value={key}
              onChange={(event) => setKey(event.currentTarget.value)}
              error={error}
              autoComplete="current-password"
              data-autofocus
              autoFocus
            />
            <Button type="submit" loading={checking}>
              Entrar
            </Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
