import { type BaseConfig, DEV_API_KEY, EnvReader, readBaseConfig } from '@catalogo/kit/config';

export interface ProductsClientConfig {
  url: string;
  apiKey: string;
  /** Per attempt. */
  timeoutMs: number;
  /** Attempts in all, the first included. */
  attempts: number;
  /** Consecutive failed attempts that open the circuit. */
  breakerThreshold: number;
  /** How long the open circuit refuses calls before it lets one probe through. */
  breakerHalfOpenMs: number;
  connections: number;
}

export interface InventoryConfig extends BaseConfig {
  databasePoolMax: number;
  products: ProductsClientConfig;
  natsUrl: string | undefined;
}

export function loadConfig(env: Record<string, string | undefined>): InventoryConfig {
  const reader = new EnvReader(env);
  const config: InventoryConfig = {
    ...readBaseConfig(reader, 3002),
    databasePoolMax: reader.int('DATABASE_POOL_MAX', 10, 1, 1000),
    products: {
      url: reader.url('PRODUCTS_URL', 'http://localhost:3001'),
      apiKey: reader.secret('PRODUCTS_API_KEY', DEV_API_KEY),
      timeoutMs: reader.int('PRODUCTS_TIMEOUT_MS', 5_000, 1, 600_000),
      attempts: reader.int('PRODUCTS_RETRIES', 3, 1, 10),
      breakerThreshold: reader.int('PRODUCTS_BREAKER_THRESHOLD', 5, 1, 1000),
      breakerHalfOpenMs: reader.int('PRODUCTS_BREAKER_HALF_OPEN_MS', 5_000, 1, 600_000),
      connections: reader.int('PRODUCTS_CONNECTIONS', 32, 1, 1024),
    },
    natsUrl: reader.optional('NATS_URL'),
  };
  reader.done();
  return config;
}
