import { defineConfig } from 'vitest/config';

// As in vitest.config.ts (no `module` condition: see there).
const conditions = ['source', 'node', 'development|production'];

/**
 * The chaos suite (`npm run test:chaos`): fault injection and property-based bad input. Its files
 * stop databases and kill processes, so they run one at a time, with room for restarts in the timeouts.
 */
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['test/chaos/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
