/**
 * Whole-cache runs of the CLI at scale (issue 11): `--shard I/N` splits a cache into disjoint
 * parts that cover it, a run killed with SIGKILL and started again with the same `--resume` log
 * checks every path exactly once, `--json` is NDJSON that parses line by line with the summary
 * last, and verifying a 50k-narinfo cache fits in a 64 MB heap. Caches come from
 * bench/synthetic-cache.ts (signed narinfos, no NARs: `--no-contents`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticCache, type SyntheticCache } from '../../bench/synthetic-cache.js';
import { makeSampleStore } from '../../fixtures/sample-store.js';
import { repoRoot } from '../helpers/env.js';
import { parseVerifyJson } from '../helpers/verify.js';
import { runCli, spawnCli } from './helpers.js';

let work: string;
let cache: SyntheticCache;
let all: string[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nixcache-whole-'));
  cache = await generateSyntheticCache({ dir: join(work, 'c3000'), count: 3000 });
  all = readdirSync(cache.dir)
    .filter((n) => n.endsWith('.narinfo'))
    .map((n) => n.slice(0, 32))
    .sort();
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

const verifyArgs = (dir: string, pub: string) => [
  'verify',
  '--store',
  `file://${dir}`,
  '-k',
  pub,
  '--all',
  '--no-contents',
];

/** The hash parts of the complete lines of a resume log (a torn last line is not a report). */
function loggedHashParts(file: string): string[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.pop();
  return lines.map((l) => JSON.parse(l).hashPart as string);
}

describe('verify over a whole cache', () => {
  it('--json prints NDJSON: one report a line, every line JSON, the summary last', async () => {
    const r = await runCli([...verifyArgs(cache.dir, cache.publicKey), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = parseVerifyJson(r.stdout);
    expect(out.ok).toBe(true);
    expect(out.summary).toMatchObject({ total: 3000, ok: 3000 });
    expect(out.reports.map((x) => x.hashPart).sort()).toEqual(all);
    for (const report of out.reports)
      expect(report).toMatchObject({ status: 'ok', signedBy: ['nixcache-bench-1'] });
  }, 120_000);

  it('--workers N (worker threads) and --workers 0 (the main thread) print the same reports', async () => {
    const runs = [];
    for (const workers of ['0', '3']) {
      const r = await runCli([...verifyArgs(cache.dir, cache.publicKey), '--json', '--workers', workers]);
      expect(r.code, r.stderr).toBe(0);
      const out = parseVerifyJson(r.stdout);
      runs.push(out.reports.sort((a, b) => a.hashPart.localeCompare(b.hashPart)));
      expect(out.summary).toMatchObject({ total: 3000, ok: 3000 });
    }
    expect(runs[1]).toEqual(runs[0]);
    const bad = await runCli([...verifyArgs(cache.dir, cache.publicKey), '--workers', '-1']);
    expect(bad.code).toBe(2);
  }, 120_000);

  it('--shard I/N: the N parts are disjoint and cover the cache', async () => {
    const parts: string[][] = [];
    for (let i = 1; i <= 3; i++) {
      const r = await runCli([...verifyArgs(cache.dir, cache.publicKey), '--json', '--shard', `${i}/3`]);
      expect(r.code, r.stderr).toBe(0);
      const out = parseVerifyJson(r.stdout);
      expect(out.summary.total).toBe(out.reports.length);
      parts.push(out.reports.map((x) => x.hashPart));
    }
    const union = parts.flat();
    expect(new Set(union).size).toBe(union.length);
    expect(union.sort()).toEqual(all);
    // Even: hash parts are uniformly random.
    for (const part of parts) expect(part.length).toBeGreaterThan(800);
    const bad = await runCli([...verifyArgs(cache.dir, cache.publicKey), '--shard', '4/3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--shard.*4\/3/);
  }, 120_000);

  it('a run killed with SIGKILL and resumed checks every path exactly once', async () => {
    const log = join(work, 'resume.ndjson');
    const args = [...verifyArgs(cache.dir, cache.publicKey), '--json', '--resume', log, '--parallelism', '2'];
    const child = spawnCli(args);
    child.stdout.resume();
    child.stderr.resume();
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, s) => resolve(s)));
    // Kill it once some reports are logged, long before the end.
    const deadline = Date.now() + 60_000;
    while (loggedHashParts(log).length < 100 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const first = loggedHashParts(log);
    expect(first.length).toBeGreaterThanOrEqual(100);
    expect(first.length).toBeLessThan(all.length);

    const resumed = await runCli(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    const out = parseVerifyJson(resumed.stdout);
    // The summary counts the earlier run's reports; this run printed only the rest.
    expect(out.summary).toMatchObject({ total: all.length, ok: all.length });
    const logged = loggedHashParts(log);
    expect(new Set(logged).size).toBe(logged.length);
    expect([...logged].sort()).toEqual(all);
    const before = new Set(logged.slice(0, logged.length - out.reports.length));
    expect(out.reports.every((x) => !before.has(x.hashPart))).toBe(true);
    expect(before.size + out.reports.length).toBe(all.length);

    // A third run has nothing left to do.
    const again = await runCli(args);
    expect(parseVerifyJson(again.stdout)).toMatchObject({ reports: [], summary: { total: all.length } });
  }, 180_000);

  it('verifies 50k narinfos within a 64 MB heap', async () => {
    const big = await generateSyntheticCache({ dir: join(work, 'c50k'), count: 50_000, seed: 5 });
    const r = await runCli([...verifyArgs(big.dir, big.publicKey)], {
      env: { NODE_OPTIONS: '--max-old-space-size=64' },
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/checked 50000 paths .*: 50000 ok\n$/);
    // And flat, not just under the limit: the live heap after 5k reports and after 50k.
    const script = `
      const { verifyCache } = await import(${JSON.stringify(join(repoRoot, 'src/cache/verify.ts'))});
      const { openStore } = await import(${JSON.stringify(join(repoRoot, 'src/store/open.ts'))});
      const store = await openStore(${JSON.stringify(`file://${big.dir}`)});
      const heap = [];
      let n = 0;
      const r = await verifyCache(store, { trustedKeys: [${JSON.stringify(big.publicKey)}], contents: false,
        onReport() { if (++n % 5000 === 0) { gc(); heap.push(process.memoryUsage().heapUsed); } } });
      console.log(JSON.stringify({ total: r.summary.total, heap }));`;
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--max-old-space-size=64', '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: repoRoot, encoding: 'utf8' },
    );
    expect(child.status, child.stderr).toBe(0);
    const { total, heap } = JSON.parse(child.stdout) as { total: number; heap: number[] };
    expect(total).toBe(50_000);
    expect(heap).toHaveLength(10);
    // Holding a report per path would add ~300 bytes each: 13 MB between the first and last sample.
    expect(heap.at(-1)! - heap[0]!).toBeLessThan(3 * 2 ** 20);
    rmSync(big.dir, { recursive: true, force: true });
  }, 300_000);
});

describe('copy --all', () => {
  it('streams the listing; two shards together copy everything once; a resumed run skips what is logged', async () => {
    const storeDir = join(work, 'store');
    mkdirSync(storeDir);
    const sample = await makeSampleStore(storeDir);
    const key = join(work, 'copy.secret');
    const pub = (await runCli(['key', 'generate', '--name', 'copy-1', '--out', key])).stdout.trim();
    const source = `file://${join(work, 'copy-source')}`;
    const push = await runCli([
      'push',
      '--to',
      source,
      '--secret-key-file',
      key,
      '--store-dir',
      storeDir,
      sample.hello,
    ]);
    expect(push.code, push.stderr).toBe(0);
    const target = `file://${join(work, 'copy-target')}?compression=zstd`;
    const records: { hashPart: string; path: string; status: string }[] = [];
    for (const shard of ['1/2', '2/2']) {
      const log = join(work, `copy-${shard.replace('/', '-')}.ndjson`);
      const r = await runCli([
        'copy',
        '--from',
        source,
        '--to',
        target,
        '-k',
        pub,
        '--all',
        '--json',
        '--shard',
        shard,
        '--resume',
        log,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.at(-1)).toMatchObject({ ok: true, summary: { failed: 0 } });
      records.push(...lines.slice(0, -1));
      // Started again with its log, the shard has nothing left to do and counts what was done.
      const again = await runCli([
        'copy',
        '--from',
        source,
        '--to',
        target,
        '-k',
        pub,
        '--all',
        '--json',
        '--shard',
        shard,
        '--resume',
        log,
      ]);
      const againLines = again.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(againLines).toHaveLength(1);
      // The same counts, but nothing written by the second run.
      const { written, ...counts } = lines.at(-1).summary;
      expect(written).toBeGreaterThanOrEqual(counts.copied);
      expect(againLines[0].summary).toEqual({ ...counts, written: 0 });
    }
    expect(records.map((r) => r.path).sort()).toEqual([sample.data, sample.lib, sample.hello].sort());
    const verify = await runCli(['verify', '--store', target, '-k', pub, '--all', '--json']);
    expect(parseVerifyJson(verify.stdout).summary).toMatchObject({ total: 3, ok: 3 });
  }, 120_000);
});
