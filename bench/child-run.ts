/**
 * Whole processes measured side by side for the scale benchmarks: wall time, CPU time and peak
 * RSS of a child (through `/usr/bin/time -v`), and sides run alternately, round after round, so
 * that drifting load on the machine hits both.
 */
import { spawnSync } from 'node:child_process';
import { median } from './harness.js';

export const TIME = '/usr/bin/time';

export interface ChildRun {
  readonly seconds: number;
  /** Peak resident set size in MB, when /usr/bin/time is there. */
  readonly peakRssMB: number | undefined;
  /** User + system CPU seconds of the process and its children (robust on a busy machine). */
  readonly cpuSeconds: number | undefined;
}

/** Runs a command to completion (stdout discarded), timing it and taking its peak RSS. */
export function measure(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  withTime: boolean,
): ChildRun {
  const [file, argv] = withTime ? [TIME, ['-v', cmd, ...args]] : [cmd, [...args]];
  const start = process.hrtime.bigint();
  const r = spawnSync(file, argv, { env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const stderr = r.stderr?.toString() ?? '';
  if (r.status !== 0) {
    const tail = stderr
      .split('\n')
      .filter((l) => !/^\t/.test(l))
      .slice(-3)
      .join(' | ');
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}… exited with ${r.status ?? r.signal}: ${tail}`);
  }
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  const user = /User time \(seconds\): ([\d.]+)/.exec(stderr);
  const system = /System time \(seconds\): ([\d.]+)/.exec(stderr);
  return {
    seconds,
    peakRssMB: rss ? Number(rss[1]) / 1024 : undefined,
    cpuSeconds: user && system ? Number(user[1]) + Number(system[1]) : undefined,
  };
}

/** Medians over the runs of each side (undefined for a side that did not run). */
export interface SideStats {
  seconds(name: string): number | undefined;
  rss(name: string): number | undefined;
  cpu(name: string): number | undefined;
}

/**
 * Runs each side `rounds` times, alternating the order every round; a side that fails once is
 * reported and left out from then on.
 */
export function runSides(sides: Record<string, (() => ChildRun) | undefined>, rounds: number): SideStats {
  const runs: Record<string, ChildRun[]> = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  const failed = new Set<string>();
  const entries = Object.entries(sides);
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of r % 2 ? [...entries].reverse() : entries) {
      if (!fn || failed.has(name)) continue;
      try {
        runs[name]!.push(fn());
      } catch (e) {
        failed.add(name);
        console.warn(`  ${name} failed, column skipped: ${(e as Error).message}`);
      }
    }
  }
  const medianOf = (name: string, field: 'peakRssMB' | 'cpuSeconds' | 'seconds') => {
    const v = (runs[name] ?? []).map((x) => x[field]).filter((x): x is number => x !== undefined);
    return v.length ? median(v) : undefined;
  };
  return {
    seconds: (name) => medianOf(name, 'seconds'),
    rss: (name) => medianOf(name, 'peakRssMB'),
    cpu: (name) => medianOf(name, 'cpuSeconds'),
  };
}
