import { type BaseConfig, DEV_API_KEY, EnvReader, readBaseConfig } from '@catalogo/kit/config';

export interface ProductsClientConfig {
  url: string;
  apiKey: string;
  /** Per attempt. */
  timeoutMs: number;
  /** Attempts in all, the first included. */
  attempts: number;
  /** Consecutive failed attempts that open the circuit. */
  breakerThreshold: number;
  /** How long the open circuit refuses calls before it lets one probe through. */
  breakerHalfOpenMs: number;
  connections: number;
}

export interface NatsConfig {
  /** Unset: events go to the log only. A comma-separated list names several servers of one cluster. */
  url: string | undefined;
  /** JetStream stream holding the events (created if missing). */
  stream: string;
  /** Subjects are `<prefix>.purchase.completed` and `<prefix>.updated`; the stream takes `<prefix>.>`. */
  subjectPrefix: string;
}

export interface OutboxConfig {
  /** Whether this instance runs the relay; tests switch it off to drive `relayOnce()` themselves. */
  relay: boolean;
  pollMs: number;
  /** Delivered rows are deleted after this long. */
  retentionHours: number;
}

export interface IdempotencyConfig {
  /** Keys are kept at least this long (docs/api.md §3 promises 24 hours). */
  ttlHours: number;
  /** How long an in-flight claim holds; past it, a retry may take over a claim left by a crash. */
  leaseSeconds: number;
}

export interface ReservationsConfig {
  /** How often each instance looks for reservations past their time (they expire within this). */
  sweepMs: number;
}

export interface EventsConfig {
  /** Event streams (GET /api/events) an instance holds at once; beyond, 503. */
  maxStreams: number;
  /** A comment line is sent on every stream this often (at most 15 s). */
  heartbeatMs: number;
  /** Bytes a stream may hold unsent; a client that falls further behind is dropped (and resumes). */
  bufferBytes: number;
  /** How often the event reader looks for delivered events besides the relay's notifications. */
  pollMs: number;
}

export interface InventoryConfig extends BaseConfig {
  /** A standby for the collections, which tolerate its lag (DATABASE_READ_URL); unset: the primary. */
  databaseReadUrl: string | undefined;
  databasePoolMax: number;
  /** Purchases waiting for the group-commit writer at most; beyond, a purchase is refused (503). */
  purchaseQueueMax: number;
  products: ProductsClientConfig;
  /** How long /health reports the last check of Products before it asks again. */
  productsHealthCacheMs: number;
  nats: NatsConfig;
  outbox: OutboxConfig;
  idempotency: IdempotencyConfig;
  reservations: ReservationsConfig;
  events: EventsConfig;
}

const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function onOff(reader: EnvReader, name: string, fallback: 'on' | 'off'): boolean {
  const value = reader.string(name, fallback).toLowerCase();
  if (value !== 'on' && value !== 'off') reader.problems.push(`${name} debe ser 'on' u 'off'`);
  return value !== 'off';
}

function matching(reader: EnvReader, name: string, fallback: string, pattern: RegExp): string {
  const value = reader.string(name, fallback);
  if (!pattern.test(value)) reader.problems.push(`${name} no tiene un formato válido ('${value}')`);
  return value;
}

export function loadConfig(env: Record<string, string | undefined>): InventoryConfig {
  const reader = new EnvReader(env);
  const config: InventoryConfig = {
    ...readBaseConfig(reader, 3002),
    databaseReadUrl: reader.optional('DATABASE_READ_URL') && reader.url('DATABASE_READ_URL'),
    databasePoolMax: reader.int('DATABASE_POOL_MAX', 10, 1, 1000),
    purchaseQueueMax: reader.int('PURCHASE_QUEUE_MAX', 1_000, 1, 1_000_000),
    products: {
      url: reader.url('PRODUCTS_URL', 'http://localhost:3001'),
      apiKey: reader.secret('PRODUCTS_API_KEY', DEV_API_KEY),
      timeoutMs: reader.int('PRODUCTS_TIMEOUT_MS', 5_000, 1, 600_000),
      attempts: reader.int('PRODUCTS_RETRIES', 3, 1, 10),
      breakerThreshold: reader.int('PRODUCTS_BREAKER_THRESHOLD', 5, 1, 1000),
      breakerHalfOpenMs: reader.int('PRODUCTS_BREAKER_HALF_OPEN_MS', 5_000, 1, 600_000),
      connections: reader.int('PRODUCTS_CONNECTIONS', 32, 1, 1024),
    },
    productsHealthCacheMs: reader.int('PRODUCTS_HEALTH_CACHE_MS', 2_000, 0, 600_000),
    nats: {
      url: reader.optional('NATS_URL'),
      stream: matching(reader, 'NATS_STREAM', 'INVENTORY', STREAM_NAME),
      subjectPrefix: matching(reader, 'NATS_SUBJECT_PREFIX', 'inventory', SUBJECT_TOKEN),
    },
    outbox: {
      relay: onOff(reader, 'OUTBOX_RELAY', 'on'),
      pollMs: reader.int('OUTBOX_POLL_MS', 200, 10, 60_000),
      retentionHours: reader.int('OUTBOX_RETENTION_HOURS', 168, 1, 24 * 365),
    },
    idempotency: {
      ttlHours: reader.int('IDEMPOTENCY_TTL_HOURS', 24, 24, 24 * 365),
      leaseSeconds: reader.int('IDEMPOTENCY_LEASE_SECONDS', 60, 1, 3_600),
    },
    reservations: {
      // At most 4 s, so that a reservation's units are back within 5 s of its expira_at.
      sweepMs: reader.int('RESERVATION_SWEEP_MS', 1_000, 50, 4_000),
    },
    events: {
      maxStreams: reader.int('EVENTS_MAX_STREAMS', 100, 1, 100_000),
      heartbeatMs: reader.int('EVENTS_HEARTBEAT_MS', 15_000, 10, 15_000),
      bufferBytes: reader.int('EVENTS_BUFFER_BYTES', 1_048_576, 65_536, 268_435_456),
      // At most 1 s: a lost notification must not delay an event past the promised second for long.
      pollMs: reader.int('EVENTS_POLL_MS', 500, 10, 1_000),
    },
  };
  reader.done();
  return config;
}
