/**
 * Reads one sample from Prometheus text exposition: the value of `name` with no labels, or the sum
 * over its label sets. Undefined when the metric is absent (a service that does not export it).
 */
export function metricValue(text: string, name: string): number | undefined {
  let found: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const value = Number(match[3]);
    if (!Number.isNaN(value)) found = (found ?? 0) + value;
  }
  return found;
}
