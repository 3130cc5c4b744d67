/**
 * The alerting rules: every alert explains itself (summary, description) and links its runbook
 * paragraph, which exists; and, with promtool on PATH (Debian's `prometheus` package; CI installs
 * it), the rules are valid and their unit tests pass — each alert fires on series that should fire
 * it and stays silent on series that should not (deploy/observability/alerts.test.yml).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'deploy', 'observability');

interface Rule {
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}
const groups = (parse(readFileSync(join(DIR, 'alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] })
  .groups;
const alerts = groups.flatMap((group) => group.rules).filter((rule) => rule.alert);

/** GitHub's anchor of each second-level heading of the runbook. */
const runbookAnchors = new Set(
  [...readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8').matchAll(/^## (.+)$/gm)].map((m) =>
    m[1]!.trim().toLowerCase().replace(/\s+/g, '-'),
  ),
);

const promtool = spawnSync('promtool', ['--version']).status === 0;
if (!promtool) {
  console.log(
    '[alerts] SKIPPED promtool check/test rules: promtool is not on PATH ' +
      '(apt-get install prometheus; .ci/run installs it)',
  );
}

const run = (...args: string[]) => {
  const result = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
};

describe('alerting rules', () => {
  it('define the alerts an operator must hear about', () => {
    expect(alerts.map((rule) => rule.alert).sort()).toEqual([
      'DatabasePoolExhausted',
      'HighServerErrorRate',
      'InstanceRestarting',
      'OutboxBacklogGrowing',
      'OutboxEventStale',
      'ProductsCircuitBreakerOpen',
      'PurchaseLatencyHigh',
      'ReservationsExpiringInBulk',
      'ServiceDown',
      'ServiceUnhealthy',
    ]);
  });

  it.each(alerts.map((rule) => [rule.alert!, rule] as const))(
    '%s has a summary, a description and a runbook paragraph',
    (name, rule) => {
      expect(rule.annotations?.summary?.length).toBeGreaterThan(0);
      expect(rule.annotations?.description?.length).toBeGreaterThan(0);
      expect(rule.annotations?.runbook_url).toBe(`docs/runbook.md#${name.toLowerCase()}`);
      expect(runbookAnchors).toContain(name.toLowerCase());
    },
  );

  it.skipIf(!promtool)('are valid Prometheus rules (promtool check rules)', () => {
    const { status, output } = run('check', 'rules', 'alerts.yml');
    expect(output).toContain('SUCCESS');
    expect(status, output).toBe(0);
  });

  it.skipIf(!promtool)('fire and stay silent as their unit tests say (promtool test rules)', () => {
    const { status, output } = run('test', 'rules', 'alerts.test.yml');
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('are each exercised by the unit tests', () => {
    const tests = readFileSync(join(DIR, 'alerts.test.yml'), 'utf8');
    for (const rule of alerts) expect(tests).toContain(`alertname: ${rule.alert}\n`);
  });
});
