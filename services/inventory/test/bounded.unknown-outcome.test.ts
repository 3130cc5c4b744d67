/**
 * The one 503 that may have sold: the connection to PostgreSQL lost while the purchase commits. The
 * service cannot know whether the commit happened, so it answers 503; a retry with the same
 * Idempotency-Key settles it either way, because the key's record commits in the purchase's own
 * transaction — replayed if the purchase committed, processed afresh if it did not — and the
 * product is sold once.
 *
 * A TCP proxy between the service and PostgreSQL loses the connection at the purchase's COMMIT:
 * after PostgreSQL answered it (committed, answer lost) or before passing it on (never committed).
 */
import { createServer, type Server, Socket } from 'node:net';
import type { App } from '@catalogo/kit/app';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import {
  buildInventory,
  createProductIn,
  expectError,
  historyOf,
  purchaseBody,
  send,
  setStockIn,
  startProducts,
  stockOf,
} from './helpers.js';

type Cut = 'pass' | 'after-commit' | 'before-commit';

/** Forwards connections to `target`; armed, it cuts the first connection that sends COMMIT. */
async function startCuttingProxy(
  target: URL,
): Promise<{ port: number; arm: (cut: Cut) => void; close: () => Promise<void> }> {
  let armed: Cut = 'pass';
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    upstream.connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    let cut: Cut = 'pass';
    client.on('data', (chunk: Buffer) => {
      // A simple-protocol Query message whose text is COMMIT: the end of a transaction.
      if (armed !== 'pass' && chunk.includes('COMMIT\u0000')) {
        cut = armed;
        armed = 'pass';
        if (cut === 'before-commit') return client.destroy();
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      // PostgreSQL has answered the COMMIT: it committed. The answer is never passed on.
      if (cut === 'after-commit') return client.destroy();
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    arm: (cut) => {
      armed = cut;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let db: TestDatabase;
let products: Awaited<ReturnType<typeof startProducts>>;
let proxy: Awaited<ReturnType<typeof startCuttingProxy>>;
let app: App;
let id: number;

beforeAll(async () => {
  db = await createTestDatabase('inventory');
  products = await startProducts();
  proxy = await startCuttingProxy(new URL(db.url));
  const proxied = new URL(db.url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  // No relay: its transactions would reach the proxy's COMMIT first.
  app = await buildInventory(proxied.toString(), products.url, { OUTBOX_RELAY: 'off' });
  id = await createProductIn(products.app, 5);
  await setStockIn(app, id, 10);
});
afterAll(async () => {
  await app?.close();
  await proxy?.close();
  await products?.close();
  await db?.drop();
});

const buy = (cantidad: number, key: string) =>
  send(app, 'POST', '/api/purchases', {
    body: purchaseBody(id, cantidad),
    headers: { 'idempotency-key': key },
  });

describe('a purchase whose connection is lost at its commit', () => {
  it('committed, its answer lost: a 503 that did sell; the retry with its key replays the sale, sold once', async () => {
    proxy.arm('after-commit');
    const lost = await buy(2, 'incierta-1');
    expectError(lost, 503);
    expect(lost.headers['retry-after']).toBe('1');
    // It did sell: the one 503 that may have.
    expect(await historyOf(db, id)).toEqual({ rows: 1, units: 2 });

    const retry = await buy(2, 'incierta-1');
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await historyOf(db, id)).toEqual({ rows: 1, units: 2 });
    expect(await stockOf(db, id)).toBe(8);
  });

  it('never committed, the connection lost before: a 503 that did not sell; the retry with its key sells, once', async () => {
    proxy.arm('before-commit');
    const lost = await buy(3, 'incierta-2');
    expectError(lost, 503);
    expect(await historyOf(db, id)).toEqual({ rows: 1, units: 2 });

    const retry = await buy(3, 'incierta-2');
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(await historyOf(db, id)).toEqual({ rows: 2, units: 5 });
    expect(await stockOf(db, id)).toBe(5);
  });
});
