/**
 * `verifyCache` on worker threads (`workers: N`): the same verdicts as on the main thread for
 * every kind of damage, shards and resume logs honoured, the listing pulled only as far as the
 * workers' windows allow when the consumer is slow, aborts that stop the workers, and a clear
 * refusal for a store the workers cannot open again.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticCache, type SyntheticCache } from '../../bench/synthetic-cache.js';
import { ResumeLog } from '../../src/cache/resume.js';
import { inShard } from '../../src/cache/shard.js';
import { addToVerifySummary, emptyVerifySummary, type PathReport } from '../../src/cache/verify.js';
import { NixcacheError } from '../../src/errors.js';
import { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { FileBackend } from '../../src/store/file.js';
import { openStore, storeOpenSpec } from '../../src/store/open.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { startHttpCache } from '../helpers/http-server.js';
import { verifyReports } from '../helpers/verify.js';

let work: string;
let cache: SyntheticCache;
let hashes: string[];
/** The damage done to some narinfos, by hash part, and the status each must get. */
const damaged = new Map<string, string>();

const byHash = (reports: readonly PathReport[]) =>
  [...reports].sort((a, b) => a.hashPart.localeCompare(b.hashPart));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nixcache-verify-workers-'));
  cache = await generateSyntheticCache({ dir: join(work, 'cache'), count: 1500, seed: 11 });
  hashes = readdirSync(cache.dir)
    .filter((n) => n.endsWith('.narinfo'))
    .map((n) => n.slice(0, 32))
    .sort();
  const file = (h: string) => join(cache.dir, `${h}.narinfo`);
  const edit = (h: string, status: string, change: (text: string) => string) => {
    writeFileSync(file(h), change(readFileSync(file(h), 'utf8')));
    damaged.set(h, status);
  };
  // A flipped signature, no signature, a NarSize the signature does not cover, a line that does
  // not parse, a StorePath of another path, and a narinfo that is gone.
  edit(hashes[10]!, 'untrusted', (t) =>
    t.replace(/(Sig: [^:]+:)(.)/, (_m, p, c) => p + (c === 'A' ? 'B' : 'A')),
  );
  edit(hashes[20]!, 'untrusted', (t) => t.replace(/^Sig: .*\n/m, ''));
  edit(hashes[30]!, 'untrusted', (t) =>
    t.replace(/^NarSize: (\d+)/m, (_m, n) => `NarSize: ${Number(n) + 1}`),
  );
  edit(hashes[40]!, 'unreadable', (t) => t.replace(/^NarSize: .*$/m, 'NarSize: lots'));
  edit(hashes[50]!, 'unreadable', (t) =>
    t.replace(/^StorePath: \/nix\/store\/.{32}/m, `StorePath: /nix/store/${hashes[51]}`),
  );
  unlinkSync(file(hashes[60]!));
  damaged.set(hashes[60]!, 'missing');
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('verifyCache on worker threads', () => {
  it('with contents, a path goes to whichever worker frees a slot, never behind a slow check', async () => {
    const slowCache = await generateSyntheticCache({
      dir: join(work, 'slow'),
      count: 8,
      seed: 5,
      nars: true,
    });
    const infos = readdirSync(slowCache.dir)
      .filter((n) => n.endsWith('.narinfo'))
      .map((n) => readFileSync(join(slowCache.dir, n), 'utf8'));
    const size = (t: string) => Number(/^NarSize: (\d+)$/m.exec(t)![1]);
    // The largest NAR goes first (largest-first.ts), and its download takes a while.
    const largest = infos.reduce((a, b) => (size(b) > size(a) ? b : a));
    const slowNar = /^URL: (.*)$/m.exec(largest)![1]!;
    const slowHash = /^StorePath: \/nix\/store\/(.{32})/m.exec(largest)![1]!;
    const server = await startHttpCache(slowCache.dir, {
      readOnly: true,
      delayMs: (k) => (k === slowNar ? 1500 : 0),
    });
    try {
      const store = await openStore(server.url);
      const { reports, summary } = await verifyReports(store, {
        trustedKeys: [slowCache.publicKey],
        contents: true,
        workers: 2,
        parallelism: 2,
        // An HTTP cache cannot be listed: the paths are named.
        paths: infos.map((t) => /^StorePath: \/nix\/store\/(.{32})/m.exec(t)![1]!),
      });
      expect(summary).toMatchObject({ total: 8, ok: 8 });
      // The other worker checked every other path meanwhile; none waited in the slow one's queue.
      expect(reports.map((r) => r.hashPart).indexOf(slowHash)).toBe(7);
    } finally {
      await server.close();
    }
  }, 60_000);

  it('reaches the same verdict for every path as the main thread, listing or given paths', async () => {
    const store = await openStore(`file://${cache.dir}`);
    expect(storeOpenSpec(store)).toEqual({ url: `file://${cache.dir}`, options: {} });
    const base = { trustedKeys: [cache.publicKey], contents: false };
    const inThread = await verifyReports(store, base);
    const onWorkers = await verifyReports(store, { ...base, workers: 2 });
    expect(byHash(onWorkers.reports)).toEqual(byHash(inThread.reports));
    expect(onWorkers.summary).toEqual(inThread.summary);
    expect(onWorkers.summary).toMatchObject({ total: 1499, ok: 1494, untrusted: 3, unreadable: 2 });
    for (const r of onWorkers.reports) expect(r.status).toBe(damaged.get(r.hashPart) ?? 'ok');

    // Given paths (the missing one included), one worker or three.
    for (const workers of [1, 3]) {
      const named = await verifyReports(store, { ...base, workers, paths: hashes.slice(0, 100) });
      expect(named.reports.map((r) => r.hashPart).sort()).toEqual(hashes.slice(0, 100));
      for (const r of named.reports) expect(r.status).toBe(damaged.get(r.hashPart) ?? 'ok');
    }
  }, 60_000);

  it('honours --shard and a resume log: each path checked once across runs', async () => {
    const store = await openStore(`file://${cache.dir}`);
    const shard = { index: 2, count: 3 };
    const inShardHashes = hashes.filter((h) => inShard(h, shard) && h !== hashes[60]);
    const log = join(work, 'resume.ndjson');
    // An earlier run logged the first 200 of this shard.
    writeFileSync(
      log,
      inShardHashes
        .slice(0, 200)
        .map((h) => `${JSON.stringify({ hashPart: h, status: 'ok' })}\n`)
        .join(''),
    );
    const previous = emptyVerifySummary();
    const resume = await ResumeLog.open<PathReport>(log, {
      onPrevious: (r) => addToVerifySummary(previous, r, false),
    });
    try {
      const run = await verifyReports(store, {
        trustedKeys: [cache.publicKey],
        contents: false,
        shard,
        resume,
        previous,
        workers: 2,
      });
      expect(run.reports.map((r) => r.hashPart).sort()).toEqual(inShardHashes.slice(200).sort());
      expect(run.summary.total).toBe(inShardHashes.length);
    } finally {
      await resume.close();
    }
    const logged = readFileSync(log, 'utf8').trimEnd().split('\n');
    expect(logged.map((l) => JSON.parse(l).hashPart).sort()).toEqual([...inShardHashes].sort());
  }, 60_000);

  it('pulls the listing only as far as the workers’ windows while the consumer is slow', async () => {
    const store = await openStore(`file://${cache.dir}`);
    let pulled = 0;
    let reported = 0;
    let maxAhead = 0;
    async function* paths() {
      for (const h of hashes) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - reported);
        yield h;
      }
    }
    const r = await verifyReports(store, {
      trustedKeys: [cache.publicKey],
      contents: false,
      workers: 2,
      paths: paths(),
      onReport: async () => {
        reported++;
        if (reported % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      },
    });
    expect(r.summary.total).toBe(hashes.length);
    // Two workers, a window of 128 paths each (plus the one pulled while waiting for room).
    expect(maxAhead).toBeLessThanOrEqual(2 * 128 + 1);
    expect(maxAhead).toBeGreaterThan(8);
  }, 60_000);

  it('stops the workers when the signal aborts', async () => {
    const store = await openStore(`file://${cache.dir}`);
    const controller = new AbortController();
    let seen = 0;
    const run = verifyReports(store, {
      trustedKeys: [cache.publicKey],
      contents: false,
      workers: 2,
      signal: controller.signal,
      onReport: () => {
        if (++seen === 100) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toBeLessThan(hashes.length);
  }, 60_000);

  it('refuses a store the workers cannot open again, before checking anything', async () => {
    const direct = new BinaryCacheStore(parseStoreUrl(`file://${cache.dir}`), new FileBackend(cache.dir));
    expect(storeOpenSpec(direct)).toBeUndefined();
    let reports = 0;
    const run = verifyReports(direct, {
      trustedKeys: [cache.publicKey],
      contents: false,
      workers: 2,
      onReport: () => {
        reports++;
      },
    });
    await expect(run).rejects.toThrow(NixcacheError);
    await expect(run).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    expect(reports).toBe(0);
  });
});
