import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { buildCollection, COLLECTION_FILE } from '../scripts/postman.js';

// The committed collection is generated, never edited: it must match what the routes' schemas give.
it('docs/catalogo.postman_collection.json is up to date (run npm run postman)', async () => {
  const committed = await readFile(COLLECTION_FILE, 'utf8');
  const generated = await buildCollection();
  expect(generated).toBe(committed);
  const collection = JSON.parse(generated);
  expect(collection.variable).toContainEqual({ key: 'apiKey', value: 'dev-api-key' });
  expect(collection.item.map((folder: { name: string }) => folder.name)).toEqual([
    'Products service',
    'Inventory service',
  ]);
});
