import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  url: string;
  /** A pool for assertions on what the service wrote. */
  pool: pg.Pool;
  drop: () => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh database cloned from the service's migrated template; each test file gets its own. */
export async function createTestDatabase(service: 'products' | 'inventory'): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const template = inject('templates')[service];
  const name = `t_${service}_${template.split('_').slice(2).join('_')}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // Two clones of one template at the same instant can collide ("being accessed by other users").
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
        break;
      } catch (err) {
        if (attempt >= 20 || (err as { code?: string }).code !== '55006') throw err;
        await sleep(50 * attempt);
      }
    }
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 4 });
  // pool.end() resolves once its clients are told to close, not once their backends are gone, so the
  // forced drop below can still terminate one: that idle client's error must not crash the run.
  pool.on('error', () => {});
  return {
    url: url.toString(),
    pool,
    drop: async () => {
      await pool.end();
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await dropper.end();
    },
  };
}
