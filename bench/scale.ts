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
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { nixEnv } from './cache.js';
import { type ChildRun, measure, runSides, TIME } from './child-run.js';
import { hasCommand, hasNix, record, section } from './harness.js';
import { benchScaleCopy } from './scale-copy.js';
import { benchScaleSign } from './scale-more.js';
import { benchScaleS3 } from './scale-s3.js';
import { generateSyntheticCache } from './synthetic-cache.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

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
      const { seconds, rss, cpu } = runSides(sides, options.rounds);
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
  // sign on file:// at the smallest size, and verify against s3rver (slower per object: at most 10k).
  const more = { tmp: options.tmp, rounds: options.rounds, cli, withTime };
  await benchScaleSign({ ...more, count: sizes[0]! });
  await benchScaleS3({ ...more, count: Math.min(10_000, sizes[0]!) });
  await benchScaleCopy({ ...more, count: Number(process.env.BENCH_COPY_PATHS ?? 10_000) });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-bench-scale-'));
  try {
    await benchScale({ tmp, rounds: Number(process.env.BENCH_ROUNDS ?? 3) });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
