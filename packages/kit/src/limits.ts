import type { Server } from 'node:http';
import type { Counter } from 'prom-client';
import type { HttpLimits } from './config.js';

/**
 * The Fastify options that bound how long a client may take. Fastify's own defaults wait forever
 * for a request (`requestTimeout` and `connectionTimeout` 0), so a client that sends headers
 * announcing a body and never sends it held its connection open indefinitely.
 */
export function serverTimeouts(limits: HttpLimits) {
  return {
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      // Node enforces both deadlines by sweeping its connections at this interval (30 s by default,
      // which would let a deadline of a few seconds run on for half a minute).
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
  };
}

/**
 * Caps the connections held at once: past the cap Node closes a new connection as soon as it is
 * accepted, so a flood of idle or slow clients cannot exhaust file descriptors and memory.
 */
export function capConnections(server: Server, limits: HttpLimits, refused: Counter): void {
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => refused.inc());
}
