/**
 * Each workspace declares what it imports, so that a service's image — which installs only that
 * workspace's production dependencies — never misses a package, and `npm ls --omit=dev` shows the
 * shape of the system. Node's builtins and the workspaces' own kit are exempt.
 */
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKSPACES = ['packages/kit', 'services/products', 'services/inventory', 'services/gateway'];
const BUILTINS = new Set(builtinModules);

/** `import … from 'x'`, `import 'x'`, `export … from 'x'` and `import('x')`, type-only imports included. */
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

async function sourcesOf(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The package a bare specifier names: `pg`, `@fastify/swagger`, not `fastify/types/schema.js`. */
const packageOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

async function undeclaredImports(workspace: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(ROOT, workspace, 'package.json'), 'utf8')) as {
    name: string;
    dependencies?: Record<string, string>;
  };
  const declared = new Set([manifest.name, '@catalogo/kit', ...Object.keys(manifest.dependencies ?? {})]);
  const problems = new Set<string>();
  for (const file of await sourcesOf(join(ROOT, workspace, 'src'))) {
    for (const [, specifier] of (await readFile(file, 'utf8')).matchAll(SPECIFIER)) {
      if (specifier!.startsWith('.') || specifier!.startsWith('node:') || BUILTINS.has(specifier!)) continue;
      const name = packageOf(specifier!);
      if (!declared.has(name)) problems.add(`${file.slice(ROOT.length)} imports ${name}`);
    }
  }
  return [...problems];
}

it.each(WORKSPACES)('%s declares every package its sources import', async (workspace) => {
  expect(await undeclaredImports(workspace)).toEqual([]);
});
