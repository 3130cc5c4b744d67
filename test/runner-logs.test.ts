/**
 * How `npm start` prints logs: readable prefixed lines only for a person at a terminal outside
 * production and without `--json`; JSON lines, untouched, everywhere else.
 */
import { describe, expect, it } from 'vitest';
import { chooseLogFormat, lineFormatter } from '../scripts/runner-logs.js';

describe('chooseLogFormat', () => {
  it.each([
    { tty: true, nodeEnv: undefined, json: false, format: 'pretty' },
    { tty: true, nodeEnv: 'development', json: false, format: 'pretty' },
    { tty: false, nodeEnv: undefined, json: false, format: 'json' },
    { tty: true, nodeEnv: 'production', json: false, format: 'json' },
    { tty: true, nodeEnv: undefined, json: true, format: 'json' },
  ])('tty $tty, NODE_ENV $nodeEnv, --json $json: $format', ({ format, ...input }) => {
    expect(chooseLogFormat(input)).toBe(format);
  });
});

const line = JSON.stringify({
  level: 30,
  time: Date.UTC(2026, 11, 2, 10, 0, 0),
  pid: 1,
  hostname: 'h',
  service: 'products',
  reqId: 'abc',
  status: 201,
  msg: 'request completed',
});

describe('lineFormatter', () => {
  it('passes JSON lines through untouched', () => {
    expect(lineFormatter('json', false)('products', line)).toBe(`${line}\n`);
  });

  it('turns a pino line into one readable line prefixed by its source', () => {
    const text = lineFormatter('pretty', false)('products', line);
    expect(text).toMatch(
      /^\[products\] {2}\[\d{2}:\d{2}:\d{2}\.000\] INFO: request completed \{.*"status":201/,
    );
    expect(text).not.toContain('"hostname"');
    expect(text.split('\n')).toHaveLength(2);
  });

  it('prefixes every line of text that is not a log object, and colours only when asked', () => {
    const stack = 'Error: boom\n    at somewhere';
    expect(lineFormatter('pretty', false)('inventory', stack)).toBe(
      '[inventory] Error: boom\n[inventory]     at somewhere\n',
    );
    expect(lineFormatter('pretty', true)('runner', line)).toContain('\u001b[');
    expect(lineFormatter('pretty', false)('runner', line)).not.toContain('\u001b[');
  });
});
