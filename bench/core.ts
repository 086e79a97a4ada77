/**
 * Format-core benchmarks: narinfo parse/s, signature verification/s (native and pure-TS) on the
 * 978 real cache.nixos.org narinfos, nix32 throughput, and reading + verifying those narinfos from
 * a file:// directory beside `nix store verify --no-contents` on the same directory.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyCache } from '../src/cache/verify.js';
import {
  decodeNix32,
  encodeNix32,
  makeKeyring,
  parseNarInfo,
  verifyNarInfo,
  verifyNarInfoAsync,
  verifyNarInfos,
} from '../src/index.js';
import { nativeSodium } from '../src/internal/native.js';
import { openStore } from '../src/store/open.js';
import { CACHE_NIXOS_ORG_KEY, corpusNarInfos } from '../test/helpers/corpus.js';
import { bundleChild } from './bench-child.js';
import { alternate, hasNix, median, record, run, section } from './harness.js';
import type { SigWorkerInit } from './sig-worker.js';

/**
 * Signature checks as `verify` makes them: libsodium, synchronous, on one worker thread per core
 * (at most 8), against the same on one worker thread; beside it, what a second thread gives on
 * this machine for a plain native CPU loop (sha256), since a virtual machine's cores may share
 * one physical core. Each round starts the threads, warms them up, and times them from a common
 * start; medians of 5 rounds.
 */
async function benchSignatureThreads(texts: readonly string[]): Promise<void> {
  const { Worker } = await import('node:worker_threads');
  const { availableParallelism } = await import('node:os');
  const threads = Math.min(8, availableParallelism());
  const script = await bundleChild('sig-worker');
  const PASSES = 5;
  /** Work items per second of `threads` threads running `work` at once. */
  const rate = async (work: SigWorkerInit['work'], count: number): Promise<number> => {
    const rates: number[] = [];
    for (let round = 0; round < 5; round++) {
      const init: SigWorkerInit = { work, texts, key: CACHE_NIXOS_ORG_KEY, passes: PASSES };
      const workers = Array.from({ length: count }, () => new Worker(script, { workerData: init }));
      try {
        const message = (w: import('node:worker_threads').Worker) =>
          new Promise<unknown>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          });
        await Promise.all(workers.map(message));
        const start = performance.now();
        const done = workers.map(message);
        for (const w of workers) w.postMessage('go');
        await Promise.all(done);
        rates.push(
          (count * PASSES * (work === 'sodium' ? texts.length : 100)) / ((performance.now() - start) / 1000),
        );
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    }
    return median(rates);
  };
  const one = await rate('sodium', 1);
  const all = await rate('sodium', threads);
  const machine = (await rate('sha256', threads)) / (await rate('sha256', 1));
  record({
    group: 'core',
    name: `signature checks on ${threads} worker threads (libsodium)`,
    unit: 'k/s',
    ours: all / 1000,
    anchors: { 'one worker thread (libsodium)': one / 1000 },
    higherIsBetter: true,
    note: `what verify does; goal >= 1.6x the single-thread rate; this machine: sha256 on ${threads} threads ${machine.toFixed(2)}x one thread`,
  });
}

export async function benchCore(): Promise<void> {
  section('format core (978 real cache.nixos.org narinfos)');
  const texts = corpusNarInfos();
  const ring = makeKeyring([CACHE_NIXOS_ORG_KEY]);
  const infos = texts.map((t) => parseNarInfo(t));

  // Steady state, as a whole-cache run sees it after its first few thousand narinfos: 50 passes
  // (~49k parses) let V8 finish optimizing first; each timed round is 5 passes of the corpus.
  for (let i = 0; i < 50; i++) for (const t of texts) parseNarInfo(t);
  const PASSES = 5;
  const parse = await alternate(
    {
      ours: () => {
        for (let i = 0; i < PASSES; i++) for (const t of texts) parseNarInfo(t);
      },
    },
    15,
  );
  record({
    group: 'core',
    name: 'narinfo parse',
    unit: 'k/s',
    ours: (PASSES * texts.length) / parse.ours! / 1000,
    anchors: { 'goal 200k/s': 200 },
    higherIsBetter: true,
    note: 'after 50 warm-up passes of the corpus',
  });

  const verify = await alternate(
    {
      native: () => {
        for (const i of infos) verifyNarInfo(i, ring, { backend: 'native' });
      },
      pure: () => {
        for (const i of infos) verifyNarInfo(i, ring, { backend: 'pure' });
      },
    },
    5,
  );
  // libsodium (sodium-native), the library Nix links: what verify's worker threads use.
  if (nativeSodium()) {
    const sodium = await alternate(
      {
        sodium: () => {
          for (const i of infos) verifyNarInfo(i, ring, { backend: 'sodium' });
        },
        native: () => {
          for (const i of infos) verifyNarInfo(i, ring, { backend: 'native' });
        },
      },
      5,
    );
    record({
      group: 'core',
      name: 'signature verification, libsodium (sodium-native)',
      unit: 'k/s',
      ours: texts.length / sodium.sodium! / 1000,
      anchors: { 'node:crypto (OpenSSL)': texts.length / sodium.native! / 1000 },
      higherIsBetter: true,
      note: 'one thread; verify runs it on one worker thread per core',
    });
    await benchSignatureThreads(texts);
  }
  record({
    group: 'core',
    name: 'signature verification, native (node:crypto)',
    unit: 'k/s',
    ours: texts.length / verify.native! / 1000,
    anchors: { 'pure-TS': texts.length / verify.pure! / 1000 },
    higherIsBetter: true,
  });

  // Signature checks on libuv's thread pool (node:crypto's async verify) vs the synchronous calls
  // above on the main thread: every narinfo submitted at once, and through verifyNarInfos' window.
  const checkAll = (results: readonly { trusted: boolean }[]) => {
    if (results.length !== infos.length || !results.every((r) => r.trusted)) throw new Error('untrusted');
  };
  const pool = await alternate(
    {
      sync: () => {
        for (const i of infos) verifyNarInfo(i, ring, { backend: 'native' });
      },
      all: async () => checkAll(await Promise.all(infos.map((i) => verifyNarInfoAsync(i, ring)))),
      window: async () => {
        const results = [];
        for await (const { result } of verifyNarInfos(infos, ring)) results.push(result);
        checkAll(results);
      },
    },
    7,
    { warmup: true },
  );
  const poolNote = `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, goal >= 1.6x`;
  record({
    group: 'core',
    name: 'verifyNarInfoAsync, all at once (thread pool)',
    unit: 'k/s',
    ours: texts.length / pool.all! / 1000,
    anchors: { 'sync native': texts.length / pool.sync! / 1000 },
    higherIsBetter: true,
    note: poolNote,
  });
  record({
    group: 'core',
    name: 'verifyNarInfos, window of 64 (thread pool)',
    unit: 'k/s',
    ours: texts.length / pool.window! / 1000,
    anchors: { 'sync native': texts.length / pool.sync! / 1000 },
    higherIsBetter: true,
    note: poolNote,
  });

  const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const text = encodeNix32(bytes);
  const n32 = await alternate({ encode: () => encodeNix32(bytes), decode: () => decodeNix32(text) }, 7);
  record({
    group: 'core',
    name: 'nix32 encode',
    unit: 'MB/s',
    ours: 1 / n32.encode!,
    anchors: {},
    higherIsBetter: true,
  });
  record({
    group: 'core',
    name: 'nix32 decode',
    unit: 'MB/s',
    ours: 1 / n32.decode!,
    anchors: {},
    higherIsBetter: true,
  });

  // The same 978 narinfos as a file:// cache: read, parse and verify each, beside real Nix.
  const dir = mkdtempSync(join(tmpdir(), 'nixcache-bench-narinfos-'));
  try {
    writeFileSync(join(dir, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    for (const [i, t] of texts.entries())
      writeFileSync(join(dir, `${infos[i]!.storePath.slice(11, 43)}.narinfo`), t);
    const readAndVerify = () => {
      for (const f of readdirSync(dir)) {
        if (!f.endsWith('.narinfo')) continue;
        if (!verifyNarInfo(parseNarInfo(readFileSync(join(dir, f), 'utf8'), { source: f }), ring).trusted) {
          throw new Error(`${f} untrusted`);
        }
      }
    };
    const nixArgs = [
      'store',
      'verify',
      '--store',
      `file://${dir}`,
      '--all',
      '--no-contents',
      '--trusted-public-keys',
      CACHE_NIXOS_ORG_KEY,
    ];
    const store = await openStore(`file://${dir}`);
    const viaVerifyCache = async () => {
      const r = await verifyCache(store, { trustedKeys: [CACHE_NIXOS_ORG_KEY], contents: false });
      if (r.summary.ok !== texts.length) throw new Error(`verifyCache: ${JSON.stringify(r.summary)}`);
    };
    const sides = await alternate(
      {
        ours: readAndVerify,
        verifyCache: viaVerifyCache,
        nix: hasNix ? () => run('nix', nixArgs) : undefined,
      },
      7,
    );
    record({
      group: 'core',
      name: 'read+parse+verify 978 narinfos (file://)',
      unit: 'ms',
      ours: sides.ours! * 1000,
      anchors: { 'nix store verify --no-contents': sides.nix === undefined ? undefined : sides.nix * 1000 },
      higherIsBetter: false,
      note: hasNix ? 'nix: whole process, 2 threads' : 'nix not installed: Nix column skipped',
    });
    record({
      group: 'core',
      name: 'verifyCache --no-contents, 978 narinfos',
      unit: 'ms',
      ours: sides.verifyCache! * 1000,
      anchors: { 'nix store verify --no-contents': sides.nix === undefined ? undefined : sides.nix * 1000 },
      higherIsBetter: false,
      note: hasNix ? 'goal >= 1.0x' : 'nix not installed: Nix column skipped',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchCore();
