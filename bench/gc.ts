/**
 * gc at scale (issue 12): a synthetic file:// cache of GC_BENCH_COUNT narinfos (default 100,000)
 * with a NAR each, built directly as files (no NAR contents, no signatures: gc reads neither), in
 * 10 generations of reference DAGs (each path refers to up to 8 earlier paths of its generation);
 * three pins keep the tops of the last three generations, so gc keeps ~30% and deletes the rest.
 * The collection runs in a child process so its peak RSS is its own; it prints the time of scan
 * (list + read every narinfo), mark and sweep, and the peak RSS, for a dry run, the real run, and
 * a second run that finds nothing.
 *
 * This small generator is our own (bench/synthetic-cache.ts on branch hD writes narinfos only,
 * without NAR files, which gc needs).
 *
 *   node --import tsx bench/gc.ts            # generate, then measure
 *   GC_BENCH_COUNT=20000 node --import tsx bench/gc.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

function mix(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function nix32(i: number, salt: number, length: number): string {
  let out = '';
  for (let k = 0; k < length; k++) out += NIX32[mix(i * 0x9e3779b1 + salt * 0x7feb352d + k) & 31];
  return out;
}

const basename = (i: number) => `${nix32(i, 1, 32)}-bench-path-${i}`;
/** A valid nix32 sha256 (52 digits; the first carries only 1 bit). */
const sha256 = (i: number, salt: number) => `${i & 1}${nix32(i, salt, 51)}`;

/** Writes the cache; returns the pinned top paths. */
function generate(dir: string, count: number): string[] {
  mkdirSync(join(dir, 'nar'), { recursive: true });
  mkdirSync(join(dir, 'pins'));
  writeFileSync(join(dir, 'nix-cache-info'), 'StoreDir: /nix/store\n');
  const generations = 10;
  const per = Math.ceil(count / generations);
  const narHash = `sha256:${'1'.repeat(52)}`;
  for (let i = 0; i < count; i++) {
    const start = Math.floor(i / per) * per;
    const refs = new Set<string>();
    // The previous path (so a generation's top keeps all of it) and up to 7 random earlier ones.
    if (i > start) refs.add(basename(i - 1));
    const n = i === start ? 0 : mix(i) % 8;
    for (let k = 0; k < n; k++) refs.add(basename(start + (mix(i * 31 + k) % (i - start))));
    const nar = `nar/${sha256(i, 2)}.nar.zst`;
    const size = 100 + (mix(i * 7) % 900);
    writeFileSync(join(dir, nar), Buffer.alloc(size));
    writeFileSync(
      join(dir, `${basename(i).slice(0, 32)}.narinfo`),
      `StorePath: /nix/store/${basename(i)}\nURL: ${nar}\nCompression: zstd\nFileHash: sha256:${sha256(i, 3)}\n` +
        `FileSize: ${size}\nNarHash: ${narHash}\nNarSize: ${size * 3}\nReferences: ${[...refs].sort().join(' ')}\n`,
    );
  }
  const tops: string[] = [];
  for (let g = generations - 3; g < generations; g++) {
    const top = `/nix/store/${basename(Math.min(count, (g + 1) * per) - 1)}`;
    tops.push(top);
    writeFileSync(
      join(dir, 'pins', `gen-${g}.json`),
      JSON.stringify({
        version: 1,
        name: `gen-${g}`,
        keepRevisions: 1,
        revisions: [{ time: new Date().toISOString(), paths: [top] }],
      }),
    );
  }
  return tops;
}

/** Child: one gc run, printed as JSON. */
async function child(dir: string, mode: string): Promise<void> {
  const { collectGarbage } = await import('../src/cache/gc.js');
  const { openStore } = await import('../src/store/open.js');
  const store = await openStore(`file://${dir}`);
  const started = performance.now();
  // Everything looks ten days old: the clock is moved instead of 200k utimes calls.
  const r = await collectGarbage(store, { now: Date.now() + 10 * 86_400_000, dryRun: mode === 'dry' });
  const totalMs = performance.now() - started;
  console.log(
    JSON.stringify({
      mode,
      totalMs,
      ...r.timings,
      deleted: r.deleted,
      kept: r.kept,
      marked: r.marked,
      modelBytes: r.memory.modelBytes,
      paths: r.memory.paths,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    }),
  );
}

async function main(): Promise<void> {
  const count = Number(process.env.GC_BENCH_COUNT ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'nixcache-bench-gc-'));
  try {
    const t0 = performance.now();
    generate(dir, count);
    console.log(
      `generated ${count} narinfos and NARs in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dir})`,
    );
    const self = fileURLToPath(import.meta.url);
    const rows: Record<string, unknown>[] = [];
    for (const mode of ['dry', 'real', 'again']) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', dir, mode], {
        encoding: 'utf8',
      });
      const row = JSON.parse(out.trim().split('\n').at(-1)!) as {
        scanMs: number;
        markMs: number;
        sweepMs: number;
        totalMs: number;
        marked: number;
        modelBytes: number;
        paths: number;
        maxRssMiB: number;
        deleted: Record<string, { objects: number }>;
      };
      rows.push(row);
      console.log(
        `${mode.padEnd(5)} scan ${(row.scanMs / 1000).toFixed(2)} s, mark ${(row.markMs / 1000).toFixed(2)} s, ` +
          `sweep ${(row.sweepMs / 1000).toFixed(2)} s, total ${(row.totalMs / 1000).toFixed(2)} s; ` +
          `deleted ${row.deleted.narinfo!.objects} narinfos + ${row.deleted.nar!.objects} NARs; marked ${row.marked}; ` +
          `model ${(row.modelBytes / 2 ** 20).toFixed(1)} MiB for ${row.paths} paths ` +
          `(${(row.modelBytes / row.paths).toFixed(0)} B/path); peak RSS ${row.maxRssMiB.toFixed(0)} MiB`,
      );
    }
    mkdirSync(join(fileURLToPath(new URL('.', import.meta.url)), 'results'), { recursive: true });
    writeFileSync(
      join(
        fileURLToPath(new URL('results/', import.meta.url)),
        `gc-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
      ),
      `${JSON.stringify({ count, node: process.version, rows }, null, 2)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--gen') generate(process.argv[3]!, Number(process.argv[4]));
else if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!);
else await main();
