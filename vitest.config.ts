import { configDefaults, defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the `source` condition. Vitest hands these
// to Node as --conditions, so they apply to every require of a dependency too: no `module`
// condition, which would give `require('@opentelemetry/api')` (prom-client's) the package's
// bundler build, which Node cannot load; the services run without it as well.
const conditions = ['source', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // The chaos suite has its own config and command (`npm run test:chaos`).
    exclude: [...configDefaults.exclude, 'test/chaos/**'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    coverage: {
      provider: 'v8',
      include: ['packages/*/src/**/*.ts', 'services/*/src/**/*.ts'],
      exclude: ['**/server.ts', '**/migrate.ts'],
      reporter: ['text-summary', 'text', 'html'],
    },
  },
});
