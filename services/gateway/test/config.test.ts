import { ConfigError } from '@catalogo/kit/config';
import { expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

it('defaults: port 3000, the services on their usual ports, the repository’s console/dist', () => {
  const config = loadConfig({});
  expect(config).toMatchObject({
    port: 3000,
    host: '0.0.0.0',
    productsUrl: 'http://127.0.0.1:3001',
    inventoryUrl: 'http://127.0.0.1:3002',
    upstreamTimeoutMs: 15_000,
    upstreamConnections: 128,
    logLevel: 'info',
  });
  expect(config.consoleDir).toMatch(/[/\\]console[/\\]dist$/);
  expect(config.consoleDir).not.toMatch(/services[/\\]gateway/);
});

it('GATEWAY_PORT wins over PORT; PORT alone is used as a container sets it', () => {
  expect(loadConfig({ PORT: '4000' }).port).toBe(4000);
  expect(loadConfig({ PORT: '4000', GATEWAY_PORT: '4100' }).port).toBe(4100);
});

it('every bad value is reported at once', () => {
  let error: unknown;
  try {
    loadConfig({
      GATEWAY_PORT: 'x',
      PRODUCTS_URL: 'no es una url',
      UPSTREAM_TIMEOUT_MS: '5',
      LOG_LEVEL: 'loud',
    });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).problems).toEqual([
    expect.stringContaining('GATEWAY_PORT'),
    expect.stringContaining('LOG_LEVEL'),
    expect.stringContaining('PRODUCTS_URL'),
    expect.stringContaining('UPSTREAM_TIMEOUT_MS'),
  ]);
});
