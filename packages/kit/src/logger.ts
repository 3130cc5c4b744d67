import pino, { type Logger } from 'pino';
import { logTraceFields, tracingEnabled } from './tracing.js';

/**
 * Structured JSON logs; human-readable only when a person watches a terminal outside production.
 * Secrets are redacted wherever a header object is logged.
 */
export function createLogger(service: string, level: string, production = false): Logger {
  const pretty = !production && process.stdout.isTTY;
  return pino({
    level,
    base: { service },
    // With tracing on, every line written within a request carries its trace_id.
    ...(tracingEnabled() ? { mixin: logTraceFields } : {}),
    redact: {
      paths: ['req.headers["x-api-key"]', 'req.headers.authorization', 'headers["x-api-key"]'],
      censor: '[redacted]',
    },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  });
}
