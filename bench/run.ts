/**
 * `npm run bench`: every comparison of issues 3, 4, 5, 7 and 11 in one process run, each side
 * alternating with its anchor (real Nix, the reference CLIs, the plain AWS SDK), printed as a table
 * of medians and ratios (ours / anchor, > 1 means ours is better) and written as JSON to
 * bench/results/<timestamp>.json. Nix columns are skipped with a visible note when `nix` is absent.
 *
 * Environment (all optional):
 * - BENCH_ONLY: comma-separated groups (core, nar, compression, s3, cache, small, localdb, scale, gc) —
 *   default all;
 * - BENCH_SMALL_PATHS: number of small paths pushed by the `small` group (default 600);
 * - BENCH_LOCALDB_PATHS: paths registered in the `localdb` group's synthetic Nix database (default 15000);
 * - BENCH_ROUNDS: rounds per side (default 3);
 * - BENCH_TREE_MB: copy only this many MB of node_modules (default all of it, ~290 MB here);
 * - BENCH_GENERATED_MB: incompressible file added to the node_modules copy (default 32);
 * - BENCH_XZ_PUSH_MB: size of the tree pushed with xz (default 48);
 * - BENCH_RSS_GIB: size of the single NAR for the RSS measurements (default 1);
 * - BENCH_COMPRESSION_MIB, BENCH_S3_MIB: input sizes of those groups (default 96, 128);
 * - NIXCACHE_BENCH_SCALE: narinfo counts of the scale group's synthetic caches (default 20000,100000;
 *   e.g. 1000000); BENCH_COPY_PATHS: paths of its copy run (default 10000).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCache, copyPrefix, writeGenerated } from './cache.js';
import { runCompressionBench } from './compression.js';
import { benchCore } from './core.js';
import { hasNix, record, rows, section } from './harness.js';
import { benchLocalDb } from './local-db.js';
import { benchNar } from './nar.js';
import { runS3Bench } from './s3.js';
import { benchScale } from './scale.js';
import { benchSmallPaths } from './small-paths.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const only = new Set(
  (process.env.BENCH_ONLY ?? 'core,nar,compression,s3,cache,small,localdb,scale,gc').split(','),
);
const rounds = env('BENCH_ROUNDS', 3);

const nixVersion = hasNix ? execFileSync('nix', ['--version']).toString().trim() : undefined;
console.log(
  `nixcache benchmarks: node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ` +
    `${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${nixVersion ?? 'NOTE: nix is not installed, every Nix column is skipped'}; ` +
    `${rounds} rounds per side unless noted`,
);

const started = performance.now();
const tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-bench-'));
try {
  // The ≥ 200 MB tree: a copy of node_modules plus an incompressible generated file.
  let tree: string | undefined;
  if (only.has('nar') || only.has('cache')) {
    tree = join(tmp, 'tree');
    fs.mkdirSync(tree);
    const limit = process.env.BENCH_TREE_MB;
    if (limit) copyPrefix(join(repoRoot, 'node_modules'), join(tree, 'node_modules'), Number(limit));
    else
      fs.cpSync(join(repoRoot, 'node_modules'), join(tree, 'node_modules'), {
        recursive: true,
        verbatimSymlinks: true,
      });
    writeGenerated(join(tree, 'generated.bin'), env('BENCH_GENERATED_MB', 32) * 2 ** 20);
  }
  if (only.has('core')) {
    // The corpus comes from fixtures/corpus/corpus.nar.xz, unpacked as the test setup does.
    await (await import('../test/helpers/corpus-setup.js')).default();
    await benchCore();
  }
  if (only.has('nar') && tree) await benchNar(tree, tmp, rounds);
  if (only.has('compression')) {
    section('decompression / compression vs the CLIs (MB/s of uncompressed data)');
    const comp = await runCompressionBench({
      sizeMiB: env('BENCH_COMPRESSION_MIB', 96),
      rounds,
      print: false,
    });
    for (const r of comp) {
      record({
        group: 'compression',
        name: `${r.name} (${r.inputMB.toFixed(0)} MB)`,
        unit: 'MB/s',
        ours: r.oursMBps,
        anchors: r.cli === undefined ? {} : { [r.cli]: r.cliMBps },
        higherIsBetter: true,
        ...(r.name.startsWith('decompress') && r.cli && { note: 'goal >= 0.8x' }),
      });
    }
  }
  if (only.has('s3')) {
    section('upload to s3rver: S3Backend.put vs the plain SDK (same bytes)');
    const s3 = await runS3Bench({ sizeMiB: env('BENCH_S3_MIB', 128), rounds, print: false });
    for (const r of s3) {
      record({
        group: 's3',
        name: `${r.name} (${r.sizeMB.toFixed(0)} MB)`,
        unit: 'MB/s',
        ours: r.oursMBps,
        anchors: { 'plain SDK PutObject/Upload': r.sdkMBps },
        higherIsBetter: true,
        note: `peak RSS ours ${r.oursPeakRssMB.toFixed(0)} MB, SDK ${r.sdkPeakRssMB.toFixed(0)} MB`,
      });
    }
  }
  if (only.has('cache') && tree) {
    await benchCache({
      tree,
      tmp,
      rounds,
      xzPushMB: env('BENCH_XZ_PUSH_MB', 48),
      rssGiB: env('BENCH_RSS_GIB', 1),
    });
  }
  if (only.has('small')) await benchSmallPaths({ tmp, rounds, count: env('BENCH_SMALL_PATHS', 600) });
  if (only.has('localdb')) await benchLocalDb({ tmp, rounds, count: env('BENCH_LOCALDB_PATHS', 15_000) });
  if (only.has('scale')) await benchScale({ tmp, rounds });
  if (only.has('gc')) {
    // gc on a synthetic cache (GC_BENCH_COUNT narinfos, default 100,000): its own process tree.
    section('gc on a synthetic file:// cache (scan, mark, sweep, peak RSS)');
    execFileSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'gc.ts')], {
      stdio: 'inherit',
    });
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

const seconds = (performance.now() - started) / 1000;
const out = join(repoRoot, 'bench', 'results');
fs.mkdirSync(out, { recursive: true });
const file = join(out, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(
  file,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      nix: nixVersion ?? null,
      rounds,
      seconds,
      rows: rows.map((r) => ({
        ...r,
        ratios: Object.fromEntries(
          Object.entries(r.anchors).map(([k, v]) => [
            k,
            v === undefined ? null : r.higherIsBetter ? r.ours / v : v / r.ours,
          ]),
        ),
      })),
    },
    null,
    2,
  )}\n`,
);
console.log(`\ndone in ${seconds.toFixed(0)} s; results: ${file}`);

// Every group closes what it opens, so the process ends here by itself. One full run once stayed
// alive after this line: should a handle be left open again, name it and end anyway.
setTimeout(() => {
  console.warn(
    `still running 10 s after the results were written: ${process.getActiveResourcesInfo().join(', ')}`,
  );
  process.exit(0);
}, 10_000).unref();
