import { type App, createKitApp } from '@catalogo/kit/app';
import { createPool } from '@catalogo/kit/db';
import { registerPoolMetrics } from '@catalogo/kit/pool-metrics';
import type { Logger } from 'pino';
import type { ProductsConfig } from './config.js';
import { createProductCache } from './products/products.cache.js';
import { productsRoutes } from './products/products.routes.js';
import { ProductResource, READ_ONLY } from './products/products.schemas.js';

/** Builds the Products service without listening: the server entry point and the tests share it. */
export async function buildApp(config: ProductsConfig, logger: Logger): Promise<App> {
  const pool = createPool(
    { connectionString: config.databaseUrl, max: config.databasePoolMax, applicationName: 'products' },
    logger,
  );
  const { app, metrics } = await createKitApp({
    service: 'products',
    title: 'Products service',
    description: 'Catálogo de productos (JSON:API). Autenticación: cabecera X-API-Key.',
    config,
    logger,
    readOnlyAttributes: READ_ONLY,
    health: { database: { critical: true, run: async () => void (await pool.query('SELECT 1')) } },
  });
  registerPoolMetrics(pool, metrics.registry);
  const cache = createProductCache({
    databaseUrl: config.databaseUrl,
    size: config.productCacheSize,
    ttlMs: config.productCacheTtlMs,
    pageBytes: config.productPageCacheBytes,
    log: logger,
    registry: metrics.registry,
  });
  app.addSchema(ProductResource);
  await app.register(productsRoutes(pool, cache), { prefix: '/api' });
  // The pool and the listener close after the server has stopped accepting and in-flight requests
  // have finished.
  app.addHook('onClose', async () => {
    await Promise.all([pool.end(), cache.close()]);
  });
  if (config.usingDevKey)
    logger.warn('API_KEYS is not set: accepting only the development key "dev-api-key"');
  await app.ready();
  return app;
}
