import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs, one object a line, wherever the service runs: `npm start` turns them into
 * readable lines for a terminal, and a service started on its own can be piped through pino-pretty.
 * Secrets are redacted wherever a header object is logged.
 */
export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
    redact: {
      paths: ['req.headers["x-api-key"]', 'req.headers.authorization', 'headers["x-api-key"]'],
      censor: '[redacted]',
    },
  });
}
