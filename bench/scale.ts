/**
 * Scale benchmark (issue 11 item 8): `nixcache verify --all --no-contents` beside
 * `nix store verify --all --no-contents` on the same synthetic signed file:// caches of 20k and
 * 100k narinfos (bench/synthetic-cache.ts), each side a fresh child process, alternating: wall
 * time, narinfos/s and peak RSS (`/usr/bin/time -v`).
 *
 * Sizes: NIXCACHE_BENCH_SCALE, a comma-separated list (e.g. `1000000` or `10000,20000`).
 * Nix runs with a fresh XDG cache directory every time and TTL 0 for its narinfo disk cache, so no
 * run profits from an earlier one. Our side is the CLI of this checkout, bundled with esbuild
 * into bench/.build (so it measures the current source, not a stale dist/).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { nixEnv } from './cache.js';
import { hasCommand, hasNix, median, record, section } from './harness.js';
import { generateSyntheticCache } from './synthetic-cache.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TIME = '/usr/bin/time';

/** The sizes to run: NIXCACHE_BENCH_SCALE, or 20k and 100k (the sizes issue 11 sets its goal at). */
export function scaleSizes(): number[] {
  const text = process.env.NIXCACHE_BENCH_SCALE;
  if (!text) return [20_000, 100_000];
  const sizes = text.split(',').map((s) => Number(s.trim().replace(/_/g, '')));
  if (!sizes.every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error(`NIXCACHE_BENCH_SCALE must list positive integers, got ${JSON.stringify(text)}`);
  }
  return sizes;
}

/**
 * Bundles src/cli/main.ts, and the verify worker script beside it in cache/ where the CLI looks
 * for it (dependencies stay external, resolved from the checkout). Split into chunks as dist/ is,
 * so that a driver (the AWS SDK for s3://) loads only when a store needs it.
 */
export async function buildCli(): Promise<string> {
  const outdir = join(repoRoot, 'bench', '.build', 'cli');
  await build({
    entryPoints: {
      main: join(repoRoot, 'src', 'cli', 'main.ts'),
      'cache/verify-worker': join(repoRoot, 'src', 'cache', 'verify-worker.ts'),
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return join(outdir, 'main.mjs');
}

interface ChildRun {
  readonly seconds: number;
  /** Peak resident set size in MB, when /usr/bin/time is there. */
  readonly peakRssMB: number | undefined;
  /** User + system CPU seconds of the process and its children (robust on a busy machine). */
  readonly cpuSeconds: number | undefined;
}

/** Runs a command to completion (stdout discarded), timing it and taking its peak RSS. */
function measure(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, withTime: boolean): ChildRun {
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

export async function benchScale(options: {
  tmp: string;
  rounds: number;
  sizes?: readonly number[];
}): Promise<void> {
  const sizes = options.sizes ?? scaleSizes();
  const withTime = hasCommand(TIME, ['-v', 'true']);
  section(
    'scale: verify --all --no-contents of synthetic signed file:// caches (fresh process per run; ' +
      `${withTime ? 'peak RSS by /usr/bin/time -v' : '/usr/bin/time missing: no RSS'})`,
  );
  const cli = await buildCli();
  for (const count of sizes) {
    const dir = join(options.tmp, `scale-${count}`);
    try {
      const cache = await generateSyntheticCache({ dir, count });
      console.log(
        `  (generated ${count} signed narinfos, ${(cache.bytes / 2 ** 20).toFixed(0)} MiB, in ${cache.seconds.toFixed(1)} s)`,
      );
      const store = `file://${dir}`;
      const sides: Record<string, (() => ChildRun) | undefined> = {
        nixcache: () =>
          measure(
            process.execPath,
            [cli, 'verify', '--store', store, '--all', '--no-contents', '-k', cache.publicKey],
            { ...process.env, NO_COLOR: '1' },
            withTime,
          ),
        nix: hasNix
          ? () => {
              // A new XDG cache dir every run: Nix's narinfo disk cache must not carry over.
              const home = fs.mkdtempSync(join(options.tmp, 'nix-home-'));
              try {
                const args = ['store', 'verify', '--store', store, '--all', '--no-contents'];
                return measure(
                  'nix',
                  [...args, '--trusted-public-keys', cache.publicKey],
                  nixEnv(home),
                  withTime,
                );
              } finally {
                fs.rmSync(home, { recursive: true, force: true });
              }
            }
          : undefined,
      };
      const runs: Record<string, ChildRun[]> = { nixcache: [], nix: [] };
      const failed = new Set<string>();
      const entries = Object.entries(sides);
      for (let r = 0; r < options.rounds; r++) {
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
      const seconds = (name: string) =>
        runs[name]!.length ? median(runs[name]!.map((x) => x.seconds)) : undefined;
      const medianOf = (name: string, field: 'peakRssMB' | 'cpuSeconds') => {
        const v = runs[name]!.map((x) => x[field]).filter((x): x is number => x !== undefined);
        return v.length ? median(v) : undefined;
      };
      const rss = (name: string) => medianOf(name, 'peakRssMB');
      const cpu = (name: string) => medianOf(name, 'cpuSeconds');
      const rate = (s: number | undefined) => (s === undefined ? undefined : count / s);
      const ours = seconds('nixcache');
      if (ours === undefined) continue;
      const nixNote = hasNix ? 'whole processes, wall' : 'nix not installed: Nix column skipped';
      record({
        group: 'scale',
        name: `verify --all --no-contents, ${count} narinfos`,
        unit: 'k/s',
        ours: count / ours / 1000,
        anchors: { 'nix store verify': rate(seconds('nix')) && rate(seconds('nix'))! / 1000 },
        higherIsBetter: true,
        note: `${nixNote}; ours ${ours.toFixed(2)} s${seconds('nix') === undefined ? '' : `, nix ${seconds('nix')!.toFixed(2)} s`}`,
      });
      if (cpu('nixcache') !== undefined) {
        record({
          group: 'scale',
          name: `  CPU time (user+sys), ${count} narinfos`,
          unit: 's',
          ours: cpu('nixcache')!,
          anchors: { 'nix store verify': cpu('nix') },
          higherIsBetter: false,
          note: 'less sensitive than wall time to other load on the machine',
        });
      }
      if (rss('nixcache') !== undefined) {
        record({
          group: 'scale',
          name: `  peak RSS, ${count} narinfos`,
          unit: 'MB',
          ours: rss('nixcache')!,
          anchors: { 'nix store verify': rss('nix') },
          higherIsBetter: false,
        });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-bench-scale-'));
  try {
    await benchScale({ tmp, rounds: Number(process.env.BENCH_ROUNDS ?? 3) });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
