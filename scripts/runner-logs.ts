/**
 * How `npm start` shows its own logs and the services': JSON lines by default, as the services
 * write them, so that a file, a pipe or a log collector gets one object a line; readable lines,
 * one prefix per source, when a person watches a terminal.
 */
import { prettyFactory } from 'pino-pretty';

export type LogFormat = 'pretty' | 'json';

export interface FormatInput {
  /** Whether the runner's standard output is a terminal. */
  tty: boolean;
  nodeEnv: string | undefined;
  /** `--json`: JSON even in a terminal. */
  json: boolean;
}

export function chooseLogFormat({ tty, nodeEnv, json }: FormatInput): LogFormat {
  return tty && nodeEnv !== 'production' && !json ? 'pretty' : 'json';
}

const PREFIX_WIDTH = '[inventory]'.length;

/**
 * A function turning one line a source wrote into what the runner prints: untouched in JSON mode;
 * in pretty mode a pino line becomes pino-pretty's text (anything else, say a stack trace written
 * before the logger existed, is kept as it is) and every resulting line starts with `[source]`.
 */
export function lineFormatter(
  format: LogFormat,
  colorize: boolean,
): (source: string, line: string) => string {
  if (format === 'json') return (_source, line) => `${line}\n`;
  const pretty = prettyFactory({
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  return (source, line) => {
    const prefix = `[${source}]`.padEnd(PREFIX_WIDTH);
    const text = pretty(line).trimEnd();
    return `${text
      .split('\n')
      .map((part) => `${prefix} ${part}`)
      .join('\n')}\n`;
  };
}
