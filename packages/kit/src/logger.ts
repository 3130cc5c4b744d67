import pino, { type Logger } from 'pino';
import { INSTANCE_ID } from './instance.js';
import { logTraceFields, tracingEnabled } from './tracing.js';

/**
 * Structured JSON logs, one object a line, wherever the service runs: `npm start` turns them into
 * readable lines for a terminal, and a service started on its own can be piped through pino-pretty.
 * Secrets are redacted wherever a header object is logged. Each line names the instance that wrote it.
 */
export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service, instance: INSTANCE_ID },
    // With tracing on, every line written within a request carries its trace_id.
    ...(tracingEnabled() ? { mixin: logTraceFields } : {}),
    redact: {
      paths: ['req.headers["x-api-key"]', 'req.headers.authorization', 'headers["x-api-key"]'],
      censor: '[redacted]',
    },
  });
}

/**
 * Query parameters whose name, once decoded, lower-cased and stripped of everything but letters
 * and digits, contains one of these: their values are secrets a client put in the URL by mistake.
 */
const SECRET_PARAMETER = /key|token|secret|passw|auth/;

/** The URL with the value of every secret-looking query parameter replaced, the rest as sent. */
export function redactUrl(url: string): string {
  const query = url.indexOf('?');
  if (query < 0) return url;
  const parameters = url
    .slice(query + 1)
    .split('&')
    .map((parameter) => {
      const equals = parameter.indexOf('=');
      const name = equals < 0 ? parameter : parameter.slice(0, equals);
      return SECRET_PARAMETER.test(normalise(name)) ? `${name}=[redacted]` : parameter;
    });
  return `${url.slice(0, query)}?${parameters.join('&')}`;
}

function normalise(name: string): string {
  let decoded = name.replace(/\+/g, ' ');
  try {
    decoded = decodeURIComponent(decoded);
  } catch {
    // A malformed escape is judged as it was sent.
  }
  return decoded.toLowerCase().replace(/[^a-z0-9]/g, '');
}
