import { type BaseConfig, EnvReader, readBaseConfig } from '@catalogo/kit/config';

export interface ProductsConfig extends BaseConfig {
  databasePoolMax: number;
  /** Products kept in memory (0: every read goes to the database). */
  productCacheSize: number;
  productCacheTtlMs: number;
  /** Bytes of collection pages kept in memory (0: every page goes to the database). */
  productPageCacheBytes: number;
}

export function loadConfig(env: Record<string, string | undefined>): ProductsConfig {
  const reader = new EnvReader(env);
  const config = {
    ...readBaseConfig(reader, 3001),
    databasePoolMax: reader.int('DATABASE_POOL_MAX', 10, 1, 1000),
    productCacheSize: reader.int('PRODUCT_CACHE_SIZE', 10_000, 0, 10_000_000),
    productCacheTtlMs: reader.int('PRODUCT_CACHE_TTL_MS', 30_000, 1, 86_400_000),
    productPageCacheBytes: reader.int('PRODUCT_PAGE_CACHE_MB', 16, 0, 65_536) * 1024 * 1024,
  };
  reader.done();
  return config;
}
