import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time per process group, read from /proc (Linux), so a result can say where each request's
 * CPU went: load generator, services, floor server, PostgreSQL. On a 2-core machine that is what
 * bounds throughput, and it explains a ratio better than latency does. Elsewhere it reports nothing.
 */
const CLOCK_TICKS_PER_SECOND = 100;

function stat(pid: number): string[] | undefined {
  try {
    // The command name may hold spaces or parentheses; the fields after its closing ')' do not.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(') ') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** `pid` and all its descendants (PostgreSQL's backends are children of the postmaster). */
export function family(pid: number): number[] {
  let all: number[];
  try {
    all = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [pid];
  }
  const parents = new Map(all.map((p) => [p, Number(stat(p)?.[1] ?? -1)]));
  const members = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, parent] of parents) {
      if (!members.has(p) && members.has(parent)) {
        members.add(p);
        grew = true;
      }
    }
  }
  return [...members];
}

/** User + system CPU seconds used so far by `pid` (and its living descendants if asked). */
function cpuSeconds(pid: number, descendants: boolean): number {
  let ticks = 0;
  for (const member of descendants ? family(pid) : [pid]) {
    const fields = stat(member);
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

export class CpuMeter {
  private readonly groups = new Map<string, { pid: number; descendants: boolean }>();
  readonly available = (() => {
    try {
      readFileSync('/proc/self/stat');
      return true;
    } catch {
      return false;
    }
  })();

  watch(group: string, pid: number | undefined, descendants = false): void {
    if (pid !== undefined) this.groups.set(group, { pid, descendants });
  }

  unwatch(group: string): void {
    this.groups.delete(group);
  }

  /** CPU seconds so far, per watched group. */
  sample(): Map<string, number> {
    const sample = new Map<string, number>();
    if (!this.available) return sample;
    for (const [group, { pid, descendants }] of this.groups) sample.set(group, cpuSeconds(pid, descendants));
    return sample;
  }
}
