/**
 * Run by trace.test.ts as a process of its own, because the instrumentations must patch `pg` and
 * `http` before anything loads them: starts tracing with an in-memory exporter, only then imports
 * both services, makes one purchase over real HTTP and prints, after the services' own log lines
 * (JSON on stdout), one line `{"spans": [...]}`. Databases come from PRODUCTS_DATABASE_URL and
 * INVENTORY_DATABASE_URL.
 */
import { startTracing } from '@catalogo/kit/tracing';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';

const exporter = new InMemorySpanExporter();
await startTracing({ serviceName: 'catalogo-test', exporter });

const { createLogger } = await import('@catalogo/kit/logger');
const { buildApp: buildProducts } = await import('../../services/products/src/app.js');
const { loadConfig: loadProductsConfig } = await import('../../services/products/src/config.js');
const { buildApp: buildInventory } = await import('../../services/inventory/src/app.js');
const { loadConfig: loadInventoryConfig } = await import('../../services/inventory/src/config.js');

const KEY = 'trace-test-key';
const headers = { 'x-api-key': KEY, 'content-type': 'application/vnd.api+json' };

const products = await buildProducts(
  // No product cache: the purchase's read of the product reaches Products' database, and its trace.
  loadProductsConfig({
    DATABASE_URL: process.env.PRODUCTS_DATABASE_URL,
    API_KEYS: KEY,
    PRODUCT_CACHE_SIZE: '0',
  }),
  createLogger('products', 'info'),
);
const productsUrl = await products.listen({ host: '127.0.0.1', port: 0 });
const inventory = await buildInventory(
  loadInventoryConfig({
    DATABASE_URL: process.env.INVENTORY_DATABASE_URL,
    API_KEYS: KEY,
    PRODUCTS_URL: productsUrl,
    PRODUCTS_API_KEY: KEY,
  }),
  createLogger('inventory', 'info'),
);
const inventoryUrl = await inventory.listen({ host: '127.0.0.1', port: 0 });

// Set-up through inject: no HTTP request, hence no trace.
const created = await products.inject({
  method: 'POST',
  url: '/api/products',
  headers,
  payload: { data: { type: 'products', attributes: { nombre: 'Trazado', precio: 3.5 } } },
});
const productId = Number(created.json().data.id);
await inventory.inject({
  method: 'PATCH',
  url: `/api/inventory/${productId}`,
  headers,
  payload: { data: { type: 'inventories', id: String(productId), attributes: { cantidad: 10 } } },
});

const response = await fetch(`${inventoryUrl}/api/purchases`, {
  method: 'POST',
  headers,
  body: JSON.stringify({ data: { type: 'purchases', attributes: { producto_id: productId, cantidad: 1 } } }),
});
await response.arrayBuffer();
if (response.status !== 201) throw new Error(`purchase answered ${response.status}`);

// A server span ends when its response has been written; wait for the Inventory request's.
for (let i = 0; i < 500; i++) {
  if (exporter.getFinishedSpans().some((s) => s.name === 'POST /api/purchases')) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await inventory.close();
await products.close();

const spans = exporter.getFinishedSpans().map((span) => ({
  name: span.name,
  kind: span.kind,
  traceId: span.spanContext().traceId,
  spanId: span.spanContext().spanId,
  parentSpanId: span.parentSpanContext?.spanId,
  parentIsRemote: span.parentSpanContext?.isRemote ?? false,
  links: span.links.map((link) => link.context.spanId),
  attributes: span.attributes,
}));
process.stdout.write(`${JSON.stringify({ spans })}\n`);
