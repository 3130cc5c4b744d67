import { type App, createKitApp } from '@catalogo/kit/app';
import { createPool } from '@catalogo/kit/db';
import { registerPoolMetrics } from '@catalogo/kit/pool-metrics';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { InventoryConfig } from './config.js';
import { createEventHub } from './events/events.hub.js';
import { eventsRoutes } from './events/events.routes.js';
import { startHousekeeping } from './housekeeping.js';
import { inventoryRoutes } from './inventory/inventory.routes.js';
import { InventoryResource, MovementResource, READ_ONLY } from './inventory/inventory.schemas.js';
import { ordersRoutes } from './orders/orders.routes.js';
import { OrderResource } from './orders/orders.schemas.js';
import { createNatsPublisher } from './outbox/outbox.publisher.js';
import { createOutboxRelay } from './outbox/outbox.relay.js';
import { createProductsClient } from './products-client.js';
import { createPurchaseRecorder } from './purchases/purchases.batcher.js';
import { purchasesRoutes } from './purchases/purchases.routes.js';
import { PurchaseResource } from './purchases/purchases.schemas.js';
import { countActive } from './reservations/reservations.repository.js';
import { reservationsRoutes } from './reservations/reservations.routes.js';
import { ReservationResource } from './reservations/reservations.schemas.js';
import { startReservationSweeper } from './reservations/reservations.sweeper.js';
import { createStockChanges } from './stock/stock.metrics.js';

const BREAKER_STATES = { closed: 0, open: 1, 'half-open': 2 } as const;

/** Builds the Inventory service without listening: the server entry point and the tests share it. */
export async function buildApp(config: InventoryConfig, logger: Logger): Promise<App> {
  const pool = createPool(
    {
      connectionString: config.databaseUrl,
      max: config.databasePoolMax,
      applicationName: 'inventory',
      ...config.database,
    },
    logger,
  );
  // Collections (purchase and order history, the ledger, the stock list) tolerate a standby's lag;
  // every other read feeds a decision or a conditional request and must see the latest commit.
  const readPool = config.databaseReadUrl
    ? createPool(
        {
          connectionString: config.databaseReadUrl,
          max: config.databasePoolMax,
          applicationName: 'inventory-read',
          ...config.database,
        },
        logger,
      )
    : pool;
  const products = createProductsClient(config.products, logger.child({ component: 'products-client' }));
  const { app, metrics } = await createKitApp({
    service: 'inventory',
    title: 'Inventory service',
    description: 'Stock y compras (JSON:API). Autenticación: cabecera X-API-Key.',
    config,
    logger,
    readOnlyAttributes: READ_ONLY,
    health: {
      database: { critical: true, run: async () => void (await pool.query('SELECT 1')) },
      // Without its standby the service still sells; its collections answer 503 meanwhile.
      ...(readPool !== pool
        ? { standby: { critical: false, run: async () => void (await readPool.query('SELECT 1')) } }
        : {}),
      // Reported for operators; purchases fail fast with 503 while it is down, the service stays up.
      // The answer is reused for a while: /health needs no key, and each hit used to call Products.
      products: { critical: false, maxAgeMs: config.productsHealthCacheMs, run: () => products.ping() },
    },
  });

  registerPoolMetrics(metrics.registry, pool);
  const outcomes = new Counter({
    name: 'purchases_total',
    help: 'Purchase attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [metrics.registry],
  });
  const breaker = new Gauge({
    name: 'products_circuit_breaker_state',
    help: 'Circuit breaker towards the Products service: 0 closed, 1 open, 2 half-open',
    registers: [metrics.registry],
  });
  breaker.set(BREAKER_STATES[products.breakerState()]);
  products.onBreakerChange((state) => breaker.set(BREAKER_STATES[state]));

  app.addSchema(InventoryResource);
  app.addSchema(MovementResource);
  app.addSchema(PurchaseResource);
  app.addSchema(OrderResource);
  app.addSchema(ReservationResource);
  // Every route and the sweeper count the stock movements they commit, by cause, in one counter.
  const stockChanges = createStockChanges(metrics.registry);
  await app.register(inventoryRoutes({ pool, readPool, products, stockChanges }), { prefix: '/api' });
  const idempotency = {
    pool,
    leaseSeconds: config.idempotency.leaseSeconds,
    log: logger.child({ component: 'idempotency' }),
  };
  const recorder = createPurchaseRecorder(pool, {
    registry: metrics.registry,
    queueMax: config.purchaseQueueMax,
    lockWaitMs: config.database.lockTimeoutMs,
    stockChanges,
  });
  await app.register(
    purchasesRoutes({ pool, readPool, recorder, products, outcomes, stockChanges, idempotency }),
    { prefix: '/api' },
  );

  const orderOutcomes = new Counter({
    name: 'orders_total',
    help: 'Order attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [metrics.registry],
  });
  await app.register(
    ordersRoutes({ pool, readPool, products, outcomes: orderOutcomes, stockChanges, idempotency }),
    { prefix: '/api' },
  );

  const reservationOutcomes = new Counter({
    name: 'reservations_total',
    help: 'Reservation attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [metrics.registry],
  });
  const log = logger.child({ component: 'reservations' });
  new Gauge({
    name: 'reservations_active',
    help: 'Reservations holding stock now (estado activa)',
    registers: [metrics.registry],
    async collect() {
      // Read at scrape time from the database, so every instance reports the same, exact figure.
      this.set(await countActive(pool).catch(() => Number.NaN));
    },
  });
  await app.register(
    reservationsRoutes({ pool, products, outcomes: reservationOutcomes, stockChanges, idempotency }),
    { prefix: '/api' },
  );
  const expired = new Counter({
    name: 'reservations_expired_total',
    help: 'Reservations this instance expired (past their time, never confirmed nor cancelled)',
    registers: [metrics.registry],
  });

  const eventsLog = logger.child({ component: 'events' });
  // The live streams read on connections of their own: a burst of reconnecting clients catching up
  // never takes a connection a purchase needs, and waits for one at most the pool's timeout.
  const eventsPool = createPool(
    {
      connectionString: config.databaseUrl,
      max: 2,
      applicationName: 'inventory-events',
      ...config.database,
    },
    eventsLog,
  );
  const hub = createEventHub({
    pool: eventsPool,
    databaseUrl: config.databaseUrl,
    log: eventsLog,
    pollMs: config.events.pollMs,
  });
  await app.register(
    eventsRoutes({
      hub,
      pool: eventsPool,
      config: config.events,
      registry: metrics.registry,
      log: eventsLog,
    }),
    { prefix: '/api' },
  );

  const relayLog = logger.child({ component: 'outbox-relay' });
  // The relay has connections of its own (its lock's session, and reads beside it): under load it
  // never queues behind requests for one, nor takes one from them; the backlog gauge uses them too.
  const relayPool = createPool(
    { connectionString: config.databaseUrl, max: 2, applicationName: 'inventory-outbox-relay' },
    relayLog,
  );
  const relay = createOutboxRelay({
    pool: relayPool,
    log: relayLog,
    publisher: config.nats.url
      ? createNatsPublisher({ ...config.nats, url: config.nats.url }, relayLog)
      : undefined,
    registry: metrics.registry,
    pollMs: config.outbox.pollMs,
  });
  const housekeeping = startHousekeeping({
    pool,
    log: logger.child({ component: 'housekeeping' }),
    idempotencyTtlHours: config.idempotency.ttlHours,
    outboxRetentionHours: config.outbox.retentionHours,
  });
  const sweeper = startReservationSweeper({
    pool,
    log,
    intervalMs: config.reservations.sweepMs,
    expired,
    stockChanges,
  });
  app.addHook('onClose', async () => {
    // In-flight requests have finished by now; the relay completes its batch before the pool closes.
    await sweeper.stop();
    await hub.close();
    await eventsPool.end();
    await relay.stop();
    await relayPool.end();
    await housekeeping.stop();
    await products.close();
    await pool.end();
    if (readPool !== pool) await readPool.end();
  });
  if (config.usingDevKey)
    logger.warn('API_KEYS is not set: accepting only the development key "dev-api-key"');
  await app.ready();
  if (config.outbox.relay) relay.start();
  return app;
}
