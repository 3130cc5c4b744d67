/**
 * Generates docs/catalogo.postman_collection.json from the OpenAPI documents of both services,
 * so the collection never drifts from the routes' schemas. Run: npm run postman
 */
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Converter from 'openapi-to-postmanv2';
import pino from 'pino';
import { buildApp as buildInventory } from '../services/inventory/src/app.js';
import { loadConfig as loadInventoryConfig } from '../services/inventory/src/config.js';
import { buildApp as buildProducts } from '../services/products/src/app.js';
import { loadConfig as loadProductsConfig } from '../services/products/src/config.js';

export const COLLECTION_FILE = new URL('../docs/catalogo.postman_collection.json', import.meta.url);
// Building an app opens no connection; the URL is only parsed.
const env = {
  DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
  LOG_LEVEL: 'silent',
  OUTBOX_RELAY: 'off',
};
const silent = pino({ level: 'silent' });

interface Item {
  id?: string;
  response?: unknown[];
  item?: Item[];
  request?: {
    method: string;
    url: { path: string[]; query?: { disabled?: boolean }[] };
    body?: { raw?: string };
  };
}

interface Collection {
  item: Item[];
}

interface OpenApi {
  paths: Record<
    string,
    Record<string, { requestBody?: { content: Record<string, { schema: { example?: unknown } }> } }>
  >;
}

/**
 * Makes the output a pure function of the schemas, so the committed file can be checked against
 * them: the converter's random ids and faked response examples are dropped (Postman assigns ids on
 * import), query parameters come from the schemas' examples, and each request body is the route's
 * own example — the converter fakes one whenever it
 * cannot validate a schema's example, which it fails to for some of ours.
 */
function tidy(items: Item[], spec: OpenApi): void {
  for (const item of items) {
    delete item.id;
    delete item.response;
    if (item.item) tidy(item.item, spec);
    const request = item.request;
    // Every query parameter is optional: shown with an example, sent only once the user ticks it.
    for (const parameter of request?.url.query ?? []) parameter.disabled = true;
    if (!request?.body) continue;
    const template = `/${request.url.path.map((part) => part.replace(/^:(.+)$/, '{$1}')).join('/')}`;
    const content = spec.paths[template]?.[request.method.toLowerCase()]?.requestBody?.content;
    const example = content && Object.values(content)[0]?.schema.example;
    if (example !== undefined) request.body.raw = JSON.stringify(example, null, 2);
  }
}

const convert = promisify(
  (
    input: Parameters<typeof Converter.convert>[0],
    options: Parameters<typeof Converter.convert>[1],
    done: (
      err: unknown,
      result: { result: boolean; reason?: string; output: { data: Collection }[] },
    ) => void,
  ) => Converter.convert(input, options, done as Parameters<typeof Converter.convert>[2]),
);

async function collectionOf(spec: OpenApi, baseUrlVariable: string): Promise<Collection> {
  const result = await convert(
    { type: 'json', data: spec },
    { folderStrategy: 'Tags', requestParametersResolution: 'Example', includeAuthInfoInExample: false },
  );
  if (!result.result) throw new Error(`OpenAPI conversion failed: ${result.reason}`);
  // The converter names every server {{baseUrl}}; each service keeps its own variable instead.
  const collection: Collection = JSON.parse(
    JSON.stringify(result.output[0]!.data).replaceAll('{{baseUrl}}', `{{${baseUrlVariable}}}`),
  );
  tidy(collection.item, spec);
  return collection;
}

/** The collection for both services, as JSON text ending in a newline. */
export async function buildCollection(): Promise<string> {
  const products = await buildProducts(loadProductsConfig(env), silent);
  const inventory = await buildInventory(loadInventoryConfig(env), silent);
  try {
    const collection = {
      info: {
        name: 'Catálogo e inventario',
        description:
          'Products (3001) e Inventory (3002). Generada desde los documentos OpenAPI: npm run postman.',
        schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json',
      },
      auth: {
        type: 'apikey',
        apikey: [
          { key: 'key', value: 'X-API-Key', type: 'string' },
          { key: 'value', value: '{{apiKey}}', type: 'string' },
          { key: 'in', value: 'header', type: 'string' },
        ],
      },
      variable: [
        { key: 'productsUrl', value: 'http://localhost:3001' },
        { key: 'inventoryUrl', value: 'http://localhost:3002' },
        { key: 'apiKey', value: 'dev-api-key' },
      ],
      item: [
        {
          name: 'Products service',
          item: (await collectionOf(products.swagger() as OpenApi, 'productsUrl')).item,
        },
        {
          name: 'Inventory service',
          item: (await collectionOf(inventory.swagger() as OpenApi, 'inventoryUrl')).item,
        },
      ],
    };
    return `${JSON.stringify(collection, null, 2)}\n`;
  } finally {
    await products.close();
    await inventory.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await writeFile(COLLECTION_FILE, await buildCollection());
  console.log(`wrote ${COLLECTION_FILE.pathname}`);
}
