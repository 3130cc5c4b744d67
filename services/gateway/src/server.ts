import { runService } from '@catalogo/kit/server';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

await runService({ name: 'gateway', loadConfig, build: buildApp });
