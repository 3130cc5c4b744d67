import { withDeadline } from '@catalogo/kit/deadline';
import { LRUCache } from 'lru-cache';
import pg from 'pg';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ProductPage, ProductRow } from './products.repository.js';

/**
 * The channel the `productos` triggers notify (migrations 1764400000000 and 1764600000000): a product
 * id for an update or delete, `+` for an insert, `*` for a truncate.
 */
const CHANGES_CHANNEL = 'productos_cambios';

export interface ProductCacheOptions {
  databaseUrl: string;
  /** Products kept at most; the least recently read go first. 0 turns the cache off. */
  size: number;
  /** Backstop age of an entry, should a notification ever be missed without the listener noticing. */
  ttlMs: number;
  /** Bytes of collection pages kept at most (estimated from their text); 0 keeps no page. */
  pageBytes: number;
  log: Logger;
  registry: Registry;
  /** First pause before reconnecting the listener; it doubles up to 5 s. */
  reconnectMs?: number;
  /** How often the listener's connection is probed, and how long a probe may take. */
  heartbeatMs?: number;
}

export interface ProductCache {
  /** The product from the cache, or from `load` (and then kept, unless it changed meanwhile). */
  read(id: number, load: () => Promise<ProductRow | undefined>): Promise<ProductRow | undefined>;
  /**
   * The products of `ids` that exist, in no particular order: those in the cache from it, the others
   * from one `load` of the missing ids (and then kept, each by the same rule as `read`).
   */
  readMany(ids: number[], load: (missing: number[]) => Promise<ProductRow[]>): Promise<ProductRow[]>;
  /**
   * A page of the collection (`key` names its filters, order and window) from the cache, or from
   * `load` (and then kept, unless any product changed meanwhile).
   */
  readPage(key: string, load: () => Promise<ProductPage>): Promise<ProductPage>;
  /** Forgets a product this instance has just changed, and every page, before its answer leaves. */
  forget(id: number): void;
  /** Forgets every page: this instance has just added a product. */
  forgetPages(): void;
  close(): Promise<void>;
}

const MAX_RECONNECT_MS = 5_000;

/**
 * What a page and its key take in memory: their strings (UTF-16), plus a rough allowance for each
 * row's object. A filter in the key can be kilobytes long.
 */
const pageWeight = (page: ProductPage, key: string) =>
  page.rows.reduce(
    (bytes, row) =>
      bytes + 2 * (row.nombre.length + (row.descripcion?.length ?? 0) + row.precio.length + 48) + 200,
    100 + 2 * key.length,
  );

/** One kind of entry (products, pages): where they are kept, how often they were found there. */
interface Shelf<K, V> {
  /**
   * The value from memory, or from `load`; kept only if `keep()` holds when it arrives and nothing
   * on the shelf was forgotten meanwhile. An undefined value (not found) is never kept.
   */
  read(key: K, load: () => Promise<V>): Promise<V>;
  /**
   * The values of `keys` found: from memory, and the rest from one `load` of the missing keys, kept by
   * the rule of `read`. `keyOf` names the key of a loaded value.
   */
  readMany(
    keys: K[],
    load: (missing: K[]) => Promise<NonNullable<V>[]>,
    keyOf: (value: NonNullable<V>) => K,
  ): Promise<NonNullable<V>[]>;
  forget(key: K): void;
  clear(): void;
}

function shelf<K extends {}, V>(options: {
  /** A new, empty LRU; undefined keeps nothing. */
  make: () => LRUCache<K, NonNullable<V>> | undefined;
  /** The hit/miss counter's name, and what it counts. */
  metric: string;
  reads: string;
  registry: Registry;
  keep: () => boolean;
}): Shelf<K, V> {
  const { make, keep } = options;
  let entries = make();
  const lookups = new Counter({
    name: options.metric,
    help: `${options.reads} by where they were answered from: the cache (hit) or the database (miss)`,
    labelNames: ['result'] as const,
    registers: [options.registry],
  });
  const hits = lookups.labels('hit');
  const misses = lookups.labels('miss');
  // Both series exist from the start, so a rate over them is defined before the first miss.
  hits.inc(0);
  misses.inc(0);
  // Moved by every forgetting: a read that ran meanwhile may hold what was forgotten.
  let generation = 0;
  return {
    async read(key, load) {
      const cached = entries?.get(key);
      if (cached !== undefined) {
        hits.inc();
        return cached;
      }
      misses.inc();
      const started = generation;
      const value = await load();
      if (entries !== undefined && value !== undefined && keep() && generation === started)
        entries.set(key, value as NonNullable<V>);
      return value;
    },
    async readMany(keys, load, keyOf) {
      const found: NonNullable<V>[] = [];
      const missing: K[] = [];
      for (const key of keys) {
        const cached = entries?.get(key);
        if (cached === undefined) missing.push(key);
        else found.push(cached);
      }
      if (found.length > 0) hits.inc(found.length);
      if (missing.length === 0) return found;
      misses.inc(missing.length);
      const started = generation;
      const loaded = await load(missing);
      const keeping = keep() && generation === started ? entries : undefined;
      for (const value of loaded) {
        keeping?.set(keyOf(value), value);
        found.push(value);
      }
      return found;
    },
    forget(key) {
      generation++;
      entries?.delete(key);
    },
    clear() {
      generation++;
      // A new LRU, not clear(): an LRU's arrays keep the length of the most entries it ever held, and
      // clear() walks them all. Every notified row clears the pages, so an update of many rows, once
      // many pages had been kept, would hold the event loop for seconds.
      if (entries !== undefined && entries.size > 0) entries = make();
    },
  };
}

/**
 * Product reads served from memory, kept exact by PostgreSQL itself: triggers on `productos` notify
 * every committed insert, update, delete and truncate, whoever made it (another instance, a
 * migration, a person with psql), and this instance's listener forgets what changed. Two rules keep
 * it exact:
 *
 * - The cache serves only while the listener is subscribed. When its connection drops, notifications
 *   may be lost, so the cache empties and every read goes to the database until it is back.
 * - A read from the database is kept only if no change arrived while it ran (`generation`): its row
 *   may predate a change whose notification came first.
 *
 * Collection pages are kept the same way, each with its `meta.total`: any change to any product,
 * an insert included, may move rows between pages or change a count, so every notification forgets
 * them all, and a page loaded while one arrived is not kept. Pages are bounded by the memory their
 * text takes, since a page of long descriptions weighs a thousand times a page of short names.
 *
 * What remains is the delivery delay of a notification (about a millisecond on one host): an
 * instance that did not make a change may answer with the previous version for that long; the one
 * that made it forgets the product before answering, so it never does. A listener connection that
 * dies without a word (no FIN, no RST) would deliver nothing while looking subscribed: a heartbeat
 * query every few seconds notices it, and `ttlMs` bounds an entry's age whatever happens. That bound
 * is also all there is for a change made with the triggers off (`session_replication_role = replica`,
 * as logical replication and `pg_restore --disable-triggers` do, or `DISABLE TRIGGER`).
 */
export function createProductCache(options: ProductCacheOptions): ProductCache {
  if (options.size === 0)
    return {
      read: (_id, load) => load(),
      readMany: (ids, load) => load(ids),
      readPage: (_key, load) => load(),
      forget: () => {},
      forgetPages: () => {},
      close: async () => {},
    };
  const { log } = options;
  let listening = false;
  // Without a listener the cache is empty: emptied when it was lost, and nothing is kept until it
  // is back.
  const keep = () => listening;
  // A product not found is not kept: one created later must be found at once.
  const products = shelf<number, ProductRow | undefined>({
    make: () => new LRUCache({ max: options.size, ttl: options.ttlMs }),
    metric: 'product_cache_lookups_total',
    reads: 'Product reads',
    registry: options.registry,
    keep,
  });
  const pages = shelf<string, ProductPage>({
    make: () =>
      options.pageBytes > 0
        ? new LRUCache({ maxSize: options.pageBytes, sizeCalculation: pageWeight, ttl: options.ttlMs })
        : undefined,
    metric: 'product_page_cache_lookups_total',
    reads: 'Collection pages',
    registry: options.registry,
    keep,
  });
  let closed = false;
  let client: pg.Client | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  let connecting: Promise<void> | undefined;
  let failing = false;
  const firstReconnectMs = options.reconnectMs ?? 100;
  let reconnectMs = firstReconnectMs;

  const listeningGauge = new Gauge({
    name: 'product_cache_listening',
    help: '1 while the change listener is subscribed and the cache serves reads, 0 otherwise',
    registers: [options.registry],
  });

  const forgetPages = () => pages.clear();

  function forget(id: number) {
    products.forget(id);
    pages.clear();
  }

  function forgetAll() {
    products.clear();
    pages.clear();
  }

  function setListening(value: boolean) {
    listening = value;
    listeningGauge.set(value ? 1 : 0);
  }

  function discard(done: pg.Client): Promise<void> {
    done.removeAllListeners();
    // An error after the connection broke must not crash the process.
    done.on('error', () => {});
    return done.end().catch(() => {});
  }

  function lost(err?: Error) {
    if (client === undefined) return;
    clearInterval(heartbeat);
    void discard(client);
    client = undefined;
    setListening(false);
    forgetAll();
    if (closed) return;
    // One warning per outage; the attempts that follow it are only debug lines.
    if (!failing) log.warn({ err }, 'product cache listener down: every read goes to the database');
    else log.debug({ err, retryInMs: reconnectMs }, 'product cache listener still down');
    failing = true;
    retryTimer = setTimeout(() => {
      connecting = connect();
    }, reconnectMs);
    reconnectMs = Math.min(reconnectMs * 2, MAX_RECONNECT_MS);
  }

  async function connect() {
    retryTimer = undefined;
    const next = new pg.Client({
      connectionString: options.databaseUrl,
      application_name: 'products-cache-listener',
      connectionTimeoutMillis: 3_000,
      // A peer that vanished without closing the connection is noticed, not waited on forever.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client = next;
    next.on('error', (err) => lost(err));
    next.on('end', () => lost());
    next.on('notification', (message) => {
      log.trace({ payload: message.payload }, 'product cache notified');
      if (message.payload === '*') forgetAll();
      else if (message.payload === '+') forgetPages();
      else forget(Number(message.payload));
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      if (client === next) lost(err as Error);
      return;
    }
    // close() ends this client once the connection attempt is over.
    if (client !== next || closed) return;
    // Whatever changed while nobody listened is unknown: start empty.
    forgetAll();
    setListening(true);
    heartbeat = setInterval(() => void probe(next), heartbeatMs);
    reconnectMs = firstReconnectMs;
    if (failing) log.info('product cache listener subscribed again: serving from the cache');
    failing = false;
  }

  /** A probe that fails, or does not answer within `heartbeatMs`, counts as the connection lost. */
  async function probe(probed: pg.Client) {
    try {
      await withDeadline(
        probed.query('SELECT 1'),
        heartbeatMs,
        () => new Error(`no answer within ${heartbeatMs} ms`),
      );
    } catch (err) {
      if (client === probed) lost(err as Error);
    }
  }

  connecting = connect();

  return {
    read: products.read,
    readMany: (ids, load) => products.readMany(ids, load, (row) => row.id),
    readPage: pages.read,
    forget,
    forgetPages,
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      clearInterval(heartbeat);
      setListening(false);
      await connecting;
      const current = client;
      client = undefined;
      if (current) await discard(current);
    },
  };
}
