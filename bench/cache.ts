/**
 * Cache workflow benchmarks (issue 5 and 7): `pushPaths` to file:// vs `nix copy --to file://`
 * with the same compression (xz, zstd) of the same store path; `verifyCache` with contents vs
 * `nix store verify --store file://…` on the same ≥ 200 MB xz cache; and the peak RSS of push and
 * verify for a single ≥ 1 GiB NAR, each in a fresh child process (bench/rss-child.ts, bundled and
 * run by plain node; process.resourceUsage().maxRSS).
 *
 * The pushed content is a store path made with `nix-store --add` from a tree (so Nix has it in
 * its store and nixcache pushes it from /nix/store); without Nix the same tree is laid out as a
 * source path in a scratch store directory and the Nix columns are skipped.
 */

import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { hasLocalNixDb, localNixMetadata } from '../src/cache/local-metadata.js';
import { pushPaths } from '../src/cache/push.js';
import { verifyCache } from '../src/cache/verify.js';
import { hashPath } from '../src/nar/node/hash-path.js';
import {
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  type SecretKey,
  toPublicKey,
} from '../src/signing/keys.js';
import { openStore } from '../src/store/open.js';
import { makeSourcePath } from '../src/store-path/make.js';
import { bundleChild } from './bench-child.js';
import { alternate, hasNix, record, run, section } from './harness.js';

const MB = 1e6;

/** Deterministic incompressible bytes (AES-128-CTR keystream), written in 1 MiB pieces. */
export function writeGenerated(path: string, size: number, seed = 1): void {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0));
  const fd = fs.openSync(path, 'w');
  const zero = Buffer.alloc(1 << 20);
  for (let done = 0; done < size; done += zero.length)
    fs.writeSync(fd, cipher.update(zero.subarray(0, Math.min(zero.length, size - done))));
  fs.closeSync(fd);
}

/** An environment for nix that shares no narinfo cache with the user and substitutes nothing. */
export function nixEnv(tmp: string): NodeJS.ProcessEnv {
  fs.mkdirSync(join(tmp, 'xdg-cache'), { recursive: true });
  return {
    ...process.env,
    XDG_CACHE_HOME: join(tmp, 'xdg-cache'),
    NIX_CONFIG: [
      'experimental-features = nix-command',
      'narinfo-cache-negative-ttl = 0',
      'narinfo-cache-positive-ttl = 0',
      'substituters =',
    ].join('\n'),
  };
}

function nixOut(args: readonly string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(args[0]!, args.slice(1), { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A path to push: its full store path and the directory nixcache reads it from. */
interface Pushable {
  readonly path: string;
  readonly storeDir: string;
  readonly narSize: number;
}

/** Puts `tree` into /nix/store with nix-store --add, or (without nix) into a scratch store dir. */
async function addToStore(
  tree: string,
  name: string,
  tmp: string,
  env: NodeJS.ProcessEnv,
): Promise<Pushable> {
  const { hash, narSize } = await hashPath(tree);
  if (hasNix) {
    const path = nixOut(['nix-store', '--add', tree], env);
    return { path, storeDir: '/nix/store', narSize };
  }
  const storeDir = join(tmp, 'store');
  fs.mkdirSync(storeDir, { recursive: true });
  const path = makeSourcePath(name, hash, []);
  fs.cpSync(tree, join(storeDir, path.slice('/nix/store/'.length)), { recursive: true });
  return { path, storeDir, narSize };
}

/**
 * Pushes `p`, with its metadata from the Nix database when it is in /nix/store (what the CLI
 * reads by default, as `nix copy` reads its own database), or (`scan`) without: its references
 * are then found by dumping and scanning the NAR once before it is dumped again to be staged.
 */
async function pushOnce(
  p: Pushable,
  dir: string,
  compression: string,
  key: SecretKey,
  scan = false,
): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  const store = await openStore(`file://${dir}?compression=${compression}`);
  const metadata =
    !scan && hasNix && p.storeDir === '/nix/store' && hasLocalNixDb()
      ? localNixMetadata([p.path], { closure: false })
      : undefined;
  const r = await pushPaths(store, [p.path], {
    storeDir: p.storeDir,
    secretKeys: [key],
    closure: false,
    ...(metadata && { metadata }),
  });
  if (r.failed.length) throw r.failed[0]!.error;
}

function nixCopyOnce(
  p: Pushable,
  dir: string,
  compression: string,
  keyFile: string,
  env: NodeJS.ProcessEnv,
): void {
  fs.rmSync(dir, { recursive: true, force: true });
  run('nix', ['copy', '--to', `file://${dir}?compression=${compression}&secret-key=${keyFile}`, p.path], env);
}

/** Splits the tree's entries (node_modules' packages and the other top-level files) into `parts` directories. */
function splitIntoPaths(tree: string, parts: number, storeDir: string): string[] {
  const entries: string[] = [];
  for (const n of fs.readdirSync(tree).sort()) {
    if (n === 'node_modules') for (const m of fs.readdirSync(join(tree, n)).sort()) entries.push(join(n, m));
    else entries.push(n);
  }
  const dirs = Array.from({ length: parts }, (_, i) => join(storeDir, `.part-${i}`));
  for (const d of dirs) fs.mkdirSync(d, { recursive: true });
  for (const [i, e] of entries.entries()) {
    fs.renameSync(join(tree, e), join(dirs[i % parts]!, e.replace(/^node_modules\//, '')));
  }
  return dirs;
}

export interface CacheBenchOptions {
  /** A tree of ≥ 200 MB (node_modules copy + a generated file), made by the runner. */
  readonly tree: string;
  readonly tmp: string;
  readonly rounds: number;
  /** MB of the tree pushed with xz (xz -6 runs at ~2-5 MB/s here; default 48). */
  readonly xzPushMB: number;
  /** GiB of the single NAR for the RSS measurements (default 1). */
  readonly rssGiB: number;
}

/** Copies the first `mb` MB of files of `from` into `to` (whole files, sorted walk). */
export function copyPrefix(from: string, to: string, mb: number): void {
  let left = mb * MB;
  const walk = (src: string, dst: string) => {
    fs.mkdirSync(dst, { recursive: true });
    for (const n of fs.readdirSync(src).sort()) {
      if (left <= 0) return;
      const s = join(src, n);
      const st = fs.lstatSync(s);
      if (st.isDirectory()) walk(s, join(dst, n));
      else if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(s), join(dst, n));
      else if (st.isFile()) {
        fs.copyFileSync(s, join(dst, n));
        left -= st.size;
      }
    }
  };
  walk(from, to);
}

/**
 * Runs the push, verify and RSS benchmarks and records their rows.
 *
 * @example await benchCache({ tree, tmp, rounds: 3, xzPushMB: 48, rssGiB: 1 })
 */
export async function benchCache(o: CacheBenchOptions): Promise<void> {
  const env = nixEnv(o.tmp);
  const key = generateSecretKey('bench.nixcache-1');
  const keyFile = join(o.tmp, 'bench.secret');
  fs.writeFileSync(keyFile, formatSecretKey(key), { mode: 0o600 });
  const pub = formatPublicKey(toPublicKey(key));
  const note = hasNix ? undefined : 'nix not installed: Nix column skipped';

  section('push to file:// (one store path, fresh cache each run)');
  const small = join(o.tmp, 'push-xz-tree');
  copyPrefix(o.tree, small, o.xzPushMB);
  const cases = [
    { compression: 'zstd', p: await addToStore(o.tree, 'bench-tree', o.tmp, env) },
    { compression: 'xz', p: await addToStore(small, 'bench-tree-small', o.tmp, env) },
  ];
  for (const c of cases) {
    const ours = join(o.tmp, `push-ours-${c.compression}`);
    const theirs = join(o.tmp, `push-nix-${c.compression}`);
    const rounds = c.compression === 'xz' ? Math.min(o.rounds, 2) : o.rounds;
    const t = await alternate(
      {
        ours: () => pushOnce(c.p, ours, c.compression, key),
        scan: c.compression === 'zstd' ? () => pushOnce(c.p, ours, c.compression, key, true) : undefined,
        nix: hasNix ? () => nixCopyOnce(c.p, theirs, c.compression, keyFile, env) : undefined,
      },
      rounds,
    );
    record({
      group: 'push',
      name: `pushPaths ${c.compression} (${(c.p.narSize / MB).toFixed(0)} MB NAR)`,
      unit: 'MB/s',
      ours: c.p.narSize / MB / t.ours!,
      anchors: { [`nix copy --to file:// ${c.compression}`]: t.nix && c.p.narSize / MB / t.nix },
      higherIsBetter: true,
      note: [
        note ?? 'metadata from the Nix database, as the CLI reads it',
        c.compression === 'xz' && `${rounds} rounds; both single-threaded xz -6`,
        t.scan &&
          `without metadata (NAR dumped twice: scanned, then staged) ${(c.p.narSize / MB / t.scan).toFixed(0)} MB/s`,
      ]
        .filter(Boolean)
        .join('; '),
    });
  }

  section('verify contents of a ≥ 200 MB xz cache (the same cache for both)');
  // Four source paths (the tree split by top-level entry) pushed with xz, two at once.
  const vstore = join(o.tmp, 'verify-store');
  fs.mkdirSync(vstore);
  const vtree = join(o.tmp, 'verify-tree');
  fs.cpSync(o.tree, vtree, { recursive: true });
  const parts = splitIntoPaths(vtree, 4, vstore);
  const paths: string[] = [];
  for (const [i, d] of parts.entries()) {
    const { hash } = await hashPath(d);
    const path = makeSourcePath(`bench-part-${i}`, hash, []);
    fs.renameSync(d, join(vstore, path.slice('/nix/store/'.length)));
    paths.push(path);
  }
  const cacheDir = join(o.tmp, 'verify-cache');
  const started = performance.now();
  const cache = await openStore(`file://${cacheDir}?compression=xz`);
  const pushed = await pushPaths(cache, paths, { storeDir: vstore, secretKeys: [key], parallelism: 2 });
  if (pushed.failed.length) throw pushed.failed[0]!.error;
  let narBytes = 0;
  let fileBytes = 0;
  const sizes: string[] = [];
  for (const p of paths) {
    const info = (await cache.getNarInfo(p))!;
    narBytes += info.narSize;
    fileBytes += info.fileSize ?? 0;
    sizes.push((info.narSize / MB).toFixed(0));
  }
  // The largest NAR bounds both sides: one xz stream decodes on one core (here ~55 MB/s of NAR).
  console.log(
    `  (built: ${paths.length} paths, NAR ${(narBytes / MB).toFixed(0)} MB (${sizes.join(' + ')}), xz ${(fileBytes / MB).toFixed(0)} MB, in ${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
  const t = await alternate(
    {
      ours: async () => {
        // As `nixcache verify` runs it: worker threads, one per core.
        const r = await verifyCache(cache, { trustedKeys: [pub], workers: availableParallelism() });
        if (!r.ok) throw new Error(`verifyCache: ${JSON.stringify(r.summary)}`);
      },
      nix: hasNix
        ? () =>
            run(
              'nix',
              ['store', 'verify', '--store', `file://${cacheDir}`, '--all', '--trusted-public-keys', pub],
              env,
            )
        : undefined,
    },
    o.rounds,
  );
  record({
    group: 'verify',
    name: `verifyCache with contents (${(narBytes / MB).toFixed(0)} MB NAR, xz)`,
    unit: 'MB/s',
    ours: narBytes / MB / t.ours!,
    anchors: { 'nix store verify': t.nix && narBytes / MB / t.nix },
    higherIsBetter: true,
    note: note ?? 'NAR MB per second; both decompress xz (liblzma); ours on one worker thread per core',
  });
  fs.rmSync(vtree, { recursive: true, force: true });
  fs.rmSync(vstore, { recursive: true, force: true });
  fs.rmSync(cacheDir, { recursive: true, force: true });

  section(`peak RSS for a single ${o.rssGiB} GiB NAR (fresh child process each)`);
  const bigStore = join(o.tmp, 'rss-store');
  const bigScratch = join(bigStore, '.scratch');
  fs.mkdirSync(bigScratch, { recursive: true });
  writeGenerated(join(bigScratch, 'big.bin'), Math.round(o.rssGiB * 2 ** 30), 7);
  const { hash } = await hashPath(bigScratch);
  const bigPath = makeSourcePath('bench-big', hash, []);
  fs.renameSync(bigScratch, join(bigStore, bigPath.slice('/nix/store/'.length)));
  const rssCache = join(o.tmp, 'rss-cache');
  // Bundled and run by plain node, as the CLI runs: under tsx the child's baseline was 86 MB
  // instead of 44 (its loader thread and transpiler), charged to the push.
  const rssChild = await bundleChild('rss-child');
  for (const [op, compression] of [
    ['push', 'zstd'],
    ['verify', 'zstd'],
  ] as const) {
    const res = child(rssChild, [op, bigStore, bigPath, rssCache, compression, keyFile]);
    record({
      group: 'rss',
      name: `peak RSS: ${op} ${o.rssGiB} GiB NAR (${compression})`,
      unit: 'MB',
      ours: res.peakMB,
      anchors: { 'goal 150 MB': 150 },
      higherIsBetter: false,
      note: `${res.seconds.toFixed(1)} s, ${((o.rssGiB * 2 ** 30) / MB / res.seconds).toFixed(0)} MB/s; /usr/bin/time %M ${res.timeMB ?? 'n/a'} MB; node baseline ${res.baselineMB.toFixed(0)} MB; ArrayBuffers up to ${res.arrayBuffersMB.toFixed(0)} MB`,
    });
  }
  fs.rmSync(bigStore, { recursive: true, force: true });
  fs.rmSync(rssCache, { recursive: true, force: true });
}

function child(
  script: string,
  args: string[],
): {
  peakMB: number;
  baselineMB: number;
  arrayBuffersMB: number;
  seconds: number;
  timeMB?: number;
} {
  const timeBin = fs.existsSync('/usr/bin/time');
  const cmd = timeBin ? '/usr/bin/time' : process.execPath;
  const argv = [...(timeBin ? ['-f', 'MAXRSS_KB=%M', process.execPath] : []), script, ...args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`RSS child ${args.join(' ')} failed: ${r.stderr}`);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    peakMB: number;
    baselineMB: number;
    arrayBuffersMB: number;
    seconds: number;
  };
  const m = /MAXRSS_KB=(\d+)/.exec(r.stderr);
  return { ...res, ...(m && { timeMB: Math.round(Number(m[1]) / 1024) }) };
}
