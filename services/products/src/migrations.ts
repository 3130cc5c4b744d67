import { fileURLToPath } from 'node:url';

/** The service's SQL migrations, applied at start-up and by `npm run migrate`. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));
