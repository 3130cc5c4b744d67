import { type BaseConfig, EnvReader, readBaseConfig } from '@catalogo/kit/config';

export interface ProductsConfig extends BaseConfig {
  databasePoolMax: number;
}

export function loadConfig(env: Record<string, string | undefined>): ProductsConfig {
  const reader = new EnvReader(env);
  const config = {
    ...readBaseConfig(reader, 3001),
    databasePoolMax: reader.int('DATABASE_POOL_MAX', 10, 1, 1000),
  };
  reader.done();
  return config;
}
