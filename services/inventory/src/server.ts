import { migrate } from '@catalogo/kit/db';
import { runService } from '@catalogo/kit/server';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { MIGRATIONS_DIR } from './migrations.js';

await runService({
  name: 'inventory',
  loadConfig,
  build: async (config, logger) => {
    await migrate(config.databaseUrl, MIGRATIONS_DIR, logger);
    return buildApp(config, logger);
  },
});
