/**
 * Reading a closure's metadata from the local Nix database (what `nixcache push` publishes, read
 * without `nix`), at the size of a large system closure: a synthetic database of
 * BENCH_LOCALDB_PATHS paths (default 15,000), each referring to up to 12 earlier ones (~180k
 * references), registered by `nix-store --load-db` in a store of its own (the paths need not
 * exist). Whole processes side by side: the bundled local-db-child.ts against `nix-store -qR`
 * (the same closure, paths only) and `nix path-info --json -r` (the same records).
 *
 * Run alone: `npx tsx bench/local-db.ts [paths] [rounds]` (needs nix).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNix32 } from '../src/nix32.js';
import { bundleChild } from './bench-child.js';
import { measure, runSides } from './child-run.js';
import { hasNix, record, section, xorshift32 } from './harness.js';

/**
 * Writes `nix-store --load-db` input for `count` paths (references to up to 12 earlier ones) and
 * returns the last 50 paths (the roots) and the number of references.
 */
function registrations(count: number, file: string): { roots: string[]; refs: number } {
  const next = xorshift32(42);
  const paths: string[] = [];
  const out: string[] = [];
  let refs = 0;
  for (let i = 0; i < count; i++) {
    const hash = new Uint8Array(20);
    for (let j = 0; j < 20; j++) hash[j] = next() & 0xff;
    const path = `/nix/store/${encodeNix32(hash)}-bench-localdb-${i}`;
    paths.push(path);
    const narHash = Array.from({ length: 8 }, () => next().toString(16).padStart(8, '0')).join('');
    const chosen = new Set<number>();
    for (let k = Math.min(i, 12); chosen.size < k; ) chosen.add(next() % i);
    refs += chosen.size;
    out.push(path, narHash, String(1000 + (next() % 1_000_000)), '', String(chosen.size));
    for (const j of chosen) out.push(paths[j]!);
  }
  fs.writeFileSync(file, `${out.join('\n')}\n`);
  return { roots: paths.slice(-50), refs };
}

/**
 * Runs the local-database benchmark and records its row (skipped without nix).
 *
 * @example await benchLocalDb({ tmp: '/tmp/x', rounds: 3 })
 */
export async function benchLocalDb(o: { tmp: string; rounds: number; count?: number }): Promise<void> {
  const count = o.count ?? 15_000;
  section(`local Nix database: the metadata of a closure (${count} registered paths)`);
  if (!hasNix) {
    console.log('  nix not installed: skipped (the database is written by nix-store --load-db)');
    return;
  }
  const root = join(o.tmp, 'localdb-root');
  const input = join(o.tmp, 'localdb-load.txt');
  const { roots, refs } = registrations(count, input);
  const load = spawnSync('nix-store', ['--store', root, '--load-db'], {
    stdio: [fs.openSync(input, 'r'), 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (load.status !== 0) throw new Error(`nix-store --load-db failed: ${load.stderr}`);
  const rootsFile = join(o.tmp, 'localdb-roots.txt');
  fs.writeFileSync(rootsFile, roots.join('\n'));
  const db = join(root, 'nix', 'var', 'nix', 'db', 'db.sqlite');
  const closureSize = spawnSync('nix-store', ['--store', root, '-qR', ...roots], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean).length;
  const child = await bundleChild('local-db-child');
  const stats = runSides(
    {
      ours: () => measure(process.execPath, [child, db, rootsFile], process.env, true),
      qR: () => measure('nix-store', ['--store', root, '-qR', ...roots], process.env, true),
      pathInfo: () =>
        measure('nix', ['path-info', '--store', root, '--json', '-r', ...roots], process.env, true),
    },
    Math.max(o.rounds, 5),
  );
  record({
    group: 'push',
    name: `local metadata of a ${closureSize}-path closure (${refs} references in the database)`,
    unit: 's',
    ours: stats.seconds('ours')!,
    anchors: {
      'nix-store -qR': stats.seconds('qR'),
      'nix path-info --json -r': stats.seconds('pathInfo'),
    },
    higherIsBetter: false,
    note: `whole processes; peak RSS ours ${stats.rss('ours')?.toFixed(0)} MB, nix-store -qR ${stats.rss('qR')?.toFixed(0)} MB, nix path-info ${stats.rss('pathInfo')?.toFixed(0)} MB`,
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [count, rounds] = process.argv.slice(2);
  const tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-localdb-'));
  try {
    await benchLocalDb({ tmp, rounds: rounds ? Number(rounds) : 3, ...(count && { count: Number(count) }) });
    const { rows } = await import('./harness.js');
    for (const r of rows) console.log(JSON.stringify(r));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
