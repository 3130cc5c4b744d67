/**
 * Every migration of both services can be undone and done again: on a fresh database holding data
 * made through the real API, each migration from the top is taken down, checked, brought up (the
 * schema exactly as before), and taken down again, to the bottom; then all come up once more. A down
 * migration carries the data it can back with it: no unit of stock is lost (units held by a
 * reservation go back to `cantidad`), and while the ledger exists its books balance.
 */
import { randomBytes } from 'node:crypto';
import { migrate } from '@catalogo/kit/db';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MIGRATIONS_DIR as INVENTORY_MIGRATIONS } from '../services/inventory/src/migrations.js';
import {
  buildInventory,
  createProductIn,
  orderBody,
  purchaseBody,
  reservationBody,
  reservationPatch,
  send,
  setStockIn,
  startProducts,
} from '../services/inventory/test/helpers.js';
import { MIGRATIONS_DIR as PRODUCTS_MIGRATIONS } from '../services/products/src/migrations.js';

const silent = pino({ level: 'silent' });

/** An empty database of its own, named like test/support/database.ts's so a run's clean-up finds it. */
function emptyDatabase(service: 'products' | 'inventory') {
  const adminUrl = inject('adminUrl');
  const run = inject('templates')[service].split('_').slice(2).join('_');
  const name = `t_${service}_${run}_down${randomBytes(3).toString('hex')}`;
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    url,
    create: () => admin(`CREATE DATABASE "${name}"`),
    drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

/** One step of the service's own migration tool, as `migrate` runs it (one transaction). */
async function step(client: pg.Client, dir: string, direction: 'up' | 'down', count = 1): Promise<string[]> {
  const ran = await runner({
    dbClient: client,
    noLock: true,
    dir,
    direction,
    migrationsTable: 'pgmigrations',
    count,
    singleTransaction: true,
    checkOrder: true,
    logger: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  return ran.map((migration) => migration.name);
}

/** The schema as PostgreSQL describes it: tables and columns, constraints, indexes, functions, triggers. */
async function schemaOf(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ line: string }>(`
    SELECT format('column %s.%s %s null=%s default=%s', table_name, column_name, data_type, is_nullable,
                  column_default) AS line
    FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'pgmigrations'
    UNION ALL
    SELECT format('constraint %s.%s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 'pgmigrations'::regclass
    UNION ALL
    SELECT format('index %s', indexdef) FROM pg_indexes
    WHERE schemaname = 'public' AND tablename <> 'pgmigrations'
    UNION ALL
    SELECT format('function %s %s', p.oid::regprocedure, md5(pg_get_functiondef(p.oid)))
    FROM pg_proc p WHERE pronamespace = 'public'::regnamespace
      -- An extension's own (pg_trgm's): a down migration leaves extensions, which others may use.
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('trigger %s', pg_get_triggerdef(oid)) FROM pg_trigger WHERE NOT tgisinternal
    ORDER BY 1`);
  return rows.map((row) => row.line);
}

const hasColumn = async (client: pg.Client, table: string, column: string) =>
  (
    await client.query(
      `SELECT 1 FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2`,
      [table, column],
    )
  ).rowCount === 1;

const hasTable = async (client: pg.Client, table: string) =>
  (await client.query('SELECT to_regclass($1) AS t', [`public.${table}`])).rows[0].t !== null;

/**
 * Down from the top one migration at a time, each time up again (same schema, `check` holding) and
 * down again; then everything up at once: the schema as it was at the top.
 */
async function downAndUp(
  url: string,
  dir: string,
  check: (client: pg.Client, after: string) => Promise<void>,
): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const undone: string[] = [];
  try {
    const top = await schemaOf(client);
    let above = top;
    for (;;) {
      const [name] = await step(client, dir, 'down');
      if (!name) break;
      undone.push(name);
      await check(client, `${name} down`);
      const below = await schemaOf(client);
      expect(below, `${name} down changes the schema`).not.toEqual(above);
      expect(await step(client, dir, 'up')).toEqual([name]);
      expect(await schemaOf(client), `${name} up again restores the schema`).toEqual(above);
      // Unless the step made the very tables checked, which come back empty.
      if (below.length > 0) await check(client, `${name} up again`);
      expect(await step(client, dir, 'down')).toEqual([name]);
      expect(await schemaOf(client), `${name} down again`).toEqual(below);
      above = below;
    }
    expect(await schemaOf(client), 'every migration down leaves no table').toEqual([]);
    const again = await step(client, dir, 'up', Number.POSITIVE_INFINITY);
    expect(again).toEqual([...undone].reverse());
    expect(await schemaOf(client)).toEqual(top);
  } finally {
    await client.end();
  }
  return undone;
}

describe('inventory migrations down and up again', () => {
  const db = emptyDatabase('inventory');
  let products: Awaited<ReturnType<typeof startProducts>>;

  beforeAll(async () => {
    await db.create();
    await migrate(db.url, INVENTORY_MIGRATIONS, silent);
    products = await startProducts();
  });
  afterAll(async () => {
    await products?.close();
    await db.drop();
  });

  it('with stock, purchases, orders and reservations in every state, no unit of stock is lost', async () => {
    const app = await buildInventory(db.url, products.url, { RESERVATION_SWEEP_MS: '100' });
    try {
      const [a, b, c] = [
        await createProductIn(products.app, 2.5),
        await createProductIn(products.app, 10),
        await createProductIn(products.app, 0.1),
      ];
      await setStockIn(app, a, 50);
      await setStockIn(app, b, 20);
      await setStockIn(app, c, 5);
      const created = async (url: string, body: unknown) => {
        const res = await send(app, 'POST', url, { body });
        expect(res.statusCode, res.body).toBe(201);
        return res.json().data.id as string;
      };
      const patched = async (url: string, body: unknown) =>
        expect((await send(app, 'PATCH', url, { body })).statusCode).toBe(200);
      await created('/api/purchases', purchaseBody(a, 2));
      const cancelledPurchase = await created('/api/purchases', purchaseBody(b, 1));
      await patched(`/api/purchases/${cancelledPurchase}`, {
        data: { type: 'purchases', id: cancelledPurchase, attributes: { estado: 'cancelada' } },
      });
      await created(
        '/api/orders',
        orderBody([
          { producto_id: a, cantidad: 1 },
          { producto_id: b, cantidad: 2 },
        ]),
      );
      const cancelledOrder = await created('/api/orders', orderBody([{ producto_id: a, cantidad: 1 }]));
      await patched(`/api/orders/${cancelledOrder}`, {
        data: { type: 'orders', id: cancelledOrder, attributes: { estado: 'cancelado' } },
      });
      // Reservations: one left active (its units held), one confirmed, one cancelled, one expired.
      await created(
        '/api/reservations',
        reservationBody(
          [
            { producto_id: a, cantidad: 3 },
            { producto_id: b, cantidad: 1 },
          ],
          600,
        ),
      );
      for (const estado of ['confirmada', 'cancelada']) {
        const id = await created(
          '/api/reservations',
          reservationBody([{ producto_id: a, cantidad: 2 }], 600),
        );
        await patched(`/api/reservations/${id}`, reservationPatch(id, estado));
      }
      const expiring = await created(
        '/api/reservations',
        reservationBody([{ producto_id: c, cantidad: 1 }], 1),
      );
      await expect
        .poll(
          async () => (await send(app, 'GET', `/api/reservations/${expiring}`)).json().data.attributes.estado,
          {
            timeout: 15_000,
            interval: 200,
          },
        )
        .toBe('expirada');
    } finally {
      await app.close();
    }

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const units = async () => {
      const held = (await hasColumn(client, 'inventario', 'reservado')) ? 'reservado' : '0';
      const { rows } = await client.query<{ producto_id: number; units: number }>(
        `SELECT producto_id, cantidad + ${held} AS units FROM inventario ORDER BY producto_id`,
      );
      return rows;
    };
    const purchases = async () =>
      Number((await client.query('SELECT count(*) AS n FROM historial_compras')).rows[0].n);
    try {
      expect((await client.query('SELECT sum(reservado)::int AS held FROM inventario')).rows[0].held).toBe(4);
      const stock = await units();
      expect(stock.map((row) => row.units)).toEqual([50 - 2 - 1 - 2, 20 - 2, 5]);
      const bought = await purchases();
      // Every event delivered, as a drained outbox would be before a schema goes back.
      await client.query('UPDATE outbox SET published_at = now() WHERE published_at IS NULL');

      const undone = await downAndUp(db.url, INVENTORY_MIGRATIONS, async (schema, after) => {
        if (!(await hasTable(schema, 'inventario'))) return;
        expect(await units(), `${after}: every unit of stock is still there`).toEqual(stock);
        expect(await purchases(), `${after}: the purchase history is kept`).toBe(bought);
        if (await hasTable(schema, 'movimientos_inventario')) {
          const { rows } = await schema.query(`
            SELECT i.producto_id FROM inventario i
            LEFT JOIN (SELECT producto_id, sum(delta) AS d, sum(delta_reservado) AS r
                       FROM movimientos_inventario GROUP BY producto_id) m USING (producto_id)
            WHERE i.cantidad <> coalesce(m.d, 0) OR i.reservado <> coalesce(m.r, 0)`);
          expect(rows, `${after}: the ledger balances`).toEqual([]);
        }
      });
      expect(undone.length).toBeGreaterThanOrEqual(8);
    } finally {
      await client.end();
    }
  });
});

describe('products migrations down and up again', () => {
  const db = emptyDatabase('products');
  beforeAll(async () => {
    await db.create();
    await migrate(db.url, PRODUCTS_MIGRATIONS, silent);
  });
  afterAll(() => db.drop());

  it('keep the products until the table itself goes', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(
        "INSERT INTO productos (nombre, precio) VALUES ('Uno', 1.5), ('Dos', 20), ('Tres', 99999999.99)",
      );
      const products = async () =>
        (await client.query('SELECT id, nombre, precio::text FROM productos ORDER BY id')).rows;
      const before = await products();
      const undone = await downAndUp(db.url, PRODUCTS_MIGRATIONS, async (schema, after) => {
        if (await hasTable(schema, 'productos')) expect(await products(), after).toEqual(before);
      });
      expect(undone.length).toBeGreaterThanOrEqual(3);
    } finally {
      await client.end();
    }
  });
});
