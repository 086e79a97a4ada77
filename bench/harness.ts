/**
 * A tiny benchmark harness: time both sides of a comparison alternately in one process run, take
 * medians, print a table of ratios (ours / anchor) and collect rows for bench/results/*.json.
 * `bench/run.ts` runs every group and writes the JSON.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export interface BenchRow {
  readonly group: string;
  readonly name: string;
  readonly unit: string;
  readonly ours: number;
  readonly anchors: Readonly<Record<string, number | undefined>>;
  readonly note?: string;
  /** Higher is better for throughput units, lower for times and memory. */
  readonly higherIsBetter: boolean;
}

export const rows: BenchRow[] = [];

/** A seeded xorshift32 generator (0 is taken as 1): the benchmarks' reproducible synthetic data. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Seconds taken by an async or sync function. */
export async function time(fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Seconds taken by a command, output discarded; undefined when it fails. */
export function timeCommand(
  cmd: string,
  args: readonly string[],
  options: { input?: string; shell?: boolean } = {},
): number | undefined {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, {
    stdio: ['pipe', 'ignore', 'pipe'],
    input: options.input,
    shell: options.shell ?? false,
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) {
    console.warn(`  ${cmd} ${args.join(' ')} failed: ${r.stderr?.toString().trim().split('\n').at(-1)}`);
    return undefined;
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * Runs each side `runs` times, alternating sides every round, and returns the median seconds of
 * each side (undefined for a side that could not run).
 */
export async function alternate(
  sides: Record<string, (() => unknown) | undefined>,
  runs = 5,
  options: { warmup?: boolean; before?: () => unknown } = {},
): Promise<Record<string, number | undefined>> {
  const samples: Record<string, number[]> = {};
  for (const name of Object.keys(sides)) samples[name] = [];
  const entries = Object.entries(sides);
  const failed = new Set<string>();
  if (options.warmup) {
    for (const [, fn] of entries) {
      await options.before?.();
      if (fn) await fn();
    }
  }
  for (let r = 0; r < runs; r++) {
    // Reverse the order every other round, so neither side always runs on a warmer machine.
    for (const [name, fn] of r % 2 ? [...entries].reverse() : entries) {
      if (!fn) continue;
      await options.before?.();
      if (failed.has(name)) continue;
      try {
        samples[name]!.push(await time(fn));
      } catch (e) {
        failed.add(name);
        samples[name] = [];
        console.warn(`  ${name} failed, column skipped: ${String((e as Error).message ?? e).split('\n')[0]}`);
      }
    }
  }
  const out: Record<string, number | undefined> = {};
  for (const [name, s] of Object.entries(samples)) out[name] = s.length ? median(s) : undefined;
  return out;
}

/** Runs a command (output discarded); throws with its stderr when it fails. */
export function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr?.toString().trim().split('\n').at(-1)}`,
    );
  }
}

export function hasCommand(cmd: string, args: string[] = ['--version']): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const hasNix = hasCommand('nix');

export function record(row: BenchRow): void {
  rows.push(row);
  const fmt = (v: number | undefined) => (v === undefined ? 'n/a' : v >= 100 ? v.toFixed(0) : v.toFixed(2));
  const anchors = Object.entries(row.anchors)
    .map(([k, v]) => {
      if (v === undefined) return `${k} n/a`;
      const ratio = row.higherIsBetter ? row.ours / v : v / row.ours;
      return `${k} ${fmt(v)} (${ratio.toFixed(2)}x)`;
    })
    .join('  ');
  console.log(
    `  ${row.name.padEnd(44)} ${fmt(row.ours).padStart(9)} ${row.unit.padEnd(6)} ${anchors}${row.note ? `  [${row.note}]` : ''}`,
  );
}

export function section(title: string): void {
  console.log(
    `\n${title}\n  ${'measure'.padEnd(44)} ${'ours'.padStart(9)} unit   anchors (ratio: >1 means ours is better)`,
  );
}
