import { migrate } from '@catalogo/kit/db';
import { createLogger } from '@catalogo/kit/logger';
import { loadConfig } from './config.js';
import { MIGRATIONS_DIR } from './migrations.js';

const config = loadConfig(process.env);
await migrate(config.databaseUrl, MIGRATIONS_DIR, createLogger('inventory', config.logLevel));
