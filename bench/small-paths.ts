/**
 * Push of a closure of many small store paths (issue 11 item 6), the shape of a system closure:
 * 600 text paths (`builtins.toFile`, 200 B to 64 KiB of word-like text, each referring to up to
 * three earlier ones) registered in the real Nix store with one `nix-instantiate --read-write-mode`
 * call. Each side runs as a fresh child process under `/usr/bin/time` (wall, user+sys CPU, peak
 * RSS), pushing to a fresh cache each run:
 *
 * - file://, xz: `nixcache push` (the CLI of this checkout bundled with esbuild, as bench/scale.ts
 *   does; metadata from the Nix database, its default) against
 *   `nix copy --to file://…?compression=xz`, both signing, both whole processes;
 * - s3rver, xz: `nixcache push` to s3rver against the plain AWS SDK putting the same objects (the
 *   NARs and narinfos of the file:// cache) with the same concurrency (2), from the bundled
 *   sdk-put-child.ts (whole processes both).
 *
 * Run alone: `npx tsx bench/small-paths.ts [count] [rounds]` (needs nix).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSecretKey, generateSecretKey } from '../src/signing/keys.js';
import { bundleChild, s3rverChildEnv } from './bench-child.js';
import { nixEnv } from './cache.js';
import { type ChildRun, measure } from './child-run.js';
import { hasNix, median, record, section, xorshift32 } from './harness.js';
import { buildCli } from './scale.js';

const PARALLELISM = 2;

/** Word-like text of `size` bytes from a seeded xorshift generator. */
function text(size: number, seed: number): string {
  const words = ['lib', 'share', 'nix', 'store', 'config', 'systemd', 'unit', 'bin', 'etc', 'path'];
  const next = xorshift32((seed * 2654435761) >>> 0);
  const out: string[] = [];
  let n = 0;
  while (n < size) {
    const r = next();
    const w = r % 3 === 0 ? (r >>> 8).toString(36) : words[(r >>> 4) % words.length]!;
    out.push(w);
    n += w.length + 1;
  }
  return out.join((next() & 7) === 0 ? '\n' : ' ').slice(0, size);
}

/**
 * Registers `count` small text paths in the Nix store and returns them (sizes log-uniform from
 * 200 B to 64 KiB, references to up to three earlier paths).
 */
export function makeSmallPaths(count: number, tmp: string, env: NodeJS.ProcessEnv): string[] {
  const lines = ['let'];
  for (let i = 0; i < count; i++) {
    const size = Math.round(200 * (65536 / 200) ** (((i * 7919) % count) / count));
    const refs = [i - 1, i - 7, i - 31].filter((j) => j >= 0 && (i + j) % 3 !== 0);
    const body = `${refs.map((j) => `\${p${j}}`).join(' ')} ${text(size, i + 1)}`;
    lines.push(`  p${i} = builtins.toFile "nixcache-bench-small-${i}" "${body}";`);
  }
  lines.push(`in [ ${Array.from({ length: count }, (_, i) => `p${i}`).join(' ')} ]`);
  const expr = join(tmp, 'small-paths.nix');
  fs.writeFileSync(expr, lines.join('\n'));
  const r = spawnSync('nix-instantiate', ['--eval', '--read-write-mode', '--strict', '--json', expr], {
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`nix-instantiate failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

/** A child run with its CPU time and peak RSS (from `/usr/bin/time`, which this group needs). */
function timed(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildRun {
  return measure(cmd, args, env ?? process.env, true);
}

const script = fileURLToPath(import.meta.url);

/** `nixcache push` of the paths in `pathsFile`, as a whole process. */
function cliPush(cli: string, url: string, keyFile: string, pathsFile: string): ChildRun {
  return timed(
    'sh',
    [
      '-c',
      'exec "$0" "$1" push --to "$2" --secret-key-file "$3" --parallelism "$5" --stdin < "$4"',
      process.execPath,
      cli,
      url,
      keyFile,
      pathsFile,
      String(PARALLELISM),
    ],
    s3rverChildEnv(),
  );
}

/** Median wall and CPU seconds of the runs, and the highest peak RSS. */
function summary(runs: readonly ChildRun[]): { seconds: number; cpu: number; peakMB: number } {
  return {
    seconds: median(runs.map((r) => r.seconds)),
    cpu: median(runs.map((r) => r.cpuSeconds!)),
    peakMB: Math.max(...runs.map((r) => r.peakRssMB!)),
  };
}

export interface SmallPathsBenchOptions {
  readonly tmp: string;
  readonly rounds: number;
  /** Number of paths (default 600). */
  readonly count?: number;
}

/**
 * Runs the small-paths push benchmarks and records their rows (skipped without nix).
 *
 * @example await benchSmallPaths({ tmp: '/tmp/x', rounds: 3 })
 */
export async function benchSmallPaths(o: SmallPathsBenchOptions): Promise<void> {
  const count = o.count ?? 600;
  section(`push ${count} small paths (xz, signed, fresh cache each run; child processes)`);
  if (!hasNix) {
    console.log('  nix not installed: skipped (the paths are made in the real Nix store)');
    return;
  }
  const env = nixEnv(o.tmp);
  const paths = makeSmallPaths(count, o.tmp, env);
  const pathsFile = join(o.tmp, 'small-paths.txt');
  fs.writeFileSync(pathsFile, paths.join('\n'));
  const key = generateSecretKey('bench.nixcache-1');
  const keyFile = join(o.tmp, 'small-bench.secret');
  fs.writeFileSync(keyFile, formatSecretKey(key), { mode: 0o600 });
  const oursDir = join(o.tmp, 'small-ours');
  const cli = await buildCli();
  const sdkChild = await bundleChild('sdk-put-child');
  const nixDir = join(o.tmp, 'small-nix');

  const ours: ChildRun[] = [];
  const nix: ChildRun[] = [];
  for (let r = 0; r < o.rounds; r++) {
    for (const side of r % 2 ? ['nix', 'ours'] : ['ours', 'nix']) {
      if (side === 'ours') {
        fs.rmSync(oursDir, { recursive: true, force: true });
        ours.push(cliPush(cli, `file://${oursDir}?compression=xz`, keyFile, pathsFile));
      } else {
        fs.rmSync(nixDir, { recursive: true, force: true });
        nix.push(
          timed(
            'nix',
            ['copy', '--to', `file://${nixDir}?compression=xz&secret-key=${keyFile}`, ...paths],
            env,
          ),
        );
      }
    }
  }
  const a = summary(ours);
  const b = summary(nix);
  record({
    group: 'push',
    name: `push ${count} small paths xz (file://)`,
    unit: 's',
    ours: a.seconds,
    anchors: { 'nix copy --to file://': b.seconds },
    higherIsBetter: false,
    note: `CPU ours ${a.cpu.toFixed(2)} s, nix ${b.cpu.toFixed(2)} s; peak RSS ours ${a.peakMB.toFixed(0)} MB, nix ${b.peakMB.toFixed(0)} MB (goal < 150)`,
  });
  record({
    group: 'rss',
    name: `peak RSS: push ${count} small paths xz`,
    unit: 'MB',
    ours: a.peakMB,
    anchors: { 'goal 150 MB': 150, 'nix copy': b.peakMB },
    higherIsBetter: false,
  });

  // s3rver: ours against the plain SDK putting the objects of the file:// cache just written.
  const { startS3rver } = await import('../test/helpers/s3rver.js');
  // Ours pushes into existing buckets (as after `nixcache init`); the SDK child creates its own.
  const s3 = await startS3rver({ buckets: Array.from({ length: o.rounds }, (_, r) => `small-ours-${r}`) });
  try {
    // One untimed run first: a fresh s3rver spends its first thousand requests warming up (its
    // CPU per run fell from 2.3-3.3 s to 1.1-1.5 s over the first rounds here), which would be
    // charged to whichever side happens to run first.
    timed(process.execPath, [sdkChild, s3.endpoint, 'small-warmup', oursDir, String(PARALLELISM)]);
    const s3ours: ChildRun[] = [];
    const sdk: ChildRun[] = [];
    for (let r = 0; r < o.rounds; r++) {
      for (const side of r % 2 ? ['sdk', 'ours'] : ['ours', 'sdk']) {
        const bucket = `small-${side}-${r}`;
        if (side === 'ours') {
          s3ours.push(
            cliPush(
              cli,
              `s3://${bucket}?endpoint=${s3.endpoint}&region=us-east-1&compression=xz`,
              keyFile,
              pathsFile,
            ),
          );
        } else {
          sdk.push(timed(process.execPath, [sdkChild, s3.endpoint, bucket, oursDir, String(PARALLELISM)]));
        }
      }
    }
    const c = summary(s3ours);
    const d = summary(sdk);
    record({
      group: 'push',
      name: `push ${count} small paths xz (s3rver)`,
      unit: 's',
      ours: c.seconds,
      anchors: { 'plain SDK PutObject of the same objects': d.seconds },
      higherIsBetter: false,
      note: `${PARALLELISM} at once both; CPU ours ${c.cpu.toFixed(2)} s, SDK ${d.cpu.toFixed(2)} s; peak RSS ours ${c.peakMB.toFixed(0)} MB, SDK ${d.peakMB.toFixed(0)} MB`,
    });
  } finally {
    await s3.stop();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === script) {
  const [count, rounds] = process.argv.slice(2);
  const tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-small-'));
  try {
    await benchSmallPaths({ tmp, count: count ? Number(count) : 600, rounds: rounds ? Number(rounds) : 3 });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
