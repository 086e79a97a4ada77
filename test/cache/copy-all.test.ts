/**
 * `copyAll` (`copy --all`): the closures of the listed paths overlap, and paths copied at the
 * same time share one run, so each path is written to the target once; the target then holds a
 * verified copy of every path, and a failure in a shared path reaches every referrer.
 */
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateSyntheticCache,
  SYNTHETIC_SECRET_KEY,
  type SyntheticCache,
} from '../../bench/synthetic-cache.js';
import { copyAll } from '../../src/cache/copy.js';
import { verifyCache } from '../../src/cache/verify.js';
import { formatNarInfo } from '../../src/narinfo/format.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { signNarInfo } from '../../src/signing/sign.js';
import { openStore } from '../../src/store/open.js';

let work: string;
let cache: SyntheticCache;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nixcache-copy-all-'));
  // References point to earlier paths, so closures are deep and overlap a lot.
  cache = await generateSyntheticCache({ dir: join(work, 'source'), count: 300, seed: 3, nars: true });
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('copyAll', () => {
  it('writes each path once however much the closures overlap, and the copy verifies', async () => {
    const from = await openStore(`file://${cache.dir}`);
    const target = join(work, 'target');
    const to = await openStore(`file://${target}?compression=xz`);
    // How often the target is asked whether it has a path.
    let asked = 0;
    const hasNarInfo = to.hasNarInfo.bind(to);
    to.hasNarInfo = (...args: Parameters<typeof hasNarInfo>) => {
      asked++;
      return hasNarInfo(...args);
    };
    const outcomes = new Map<string, string>();
    const summary = await copyAll(from, to, {
      trustedKeys: [cache.publicKey],
      parallelism: 8,
      onPath: (r) => {
        expect(outcomes.has(r.hashPart)).toBe(false);
        // Skipped ones too (most are known from the run's memory, without a read).
        expect(r.path).toMatch(new RegExp(`^/nix/store/${r.hashPart}-`));
        outcomes.set(r.hashPart, r.status);
      },
    });
    expect(summary).toMatchObject({ failed: 0, written: 300 });
    // About once per path (two graphs may ask at the same moment), not once per closure that
    // holds it (1,293 before the run remembered what it found).
    expect(asked).toBeLessThan(2 * 300);
    expect(summary.copied + summary.skipped).toBe(300);
    expect(outcomes.size).toBe(300);
    // Most listed paths come after their closure was brought over by another one.
    expect(summary.skipped).toBeGreaterThan(summary.copied);
    expect(readdirSync(join(target, 'nar'))).toHaveLength(300);
    const verified = await verifyCache(to, { trustedKeys: [cache.publicKey], contents: true });
    expect(verified.summary).toMatchObject({ total: 300, ok: 300 });
  }, 120_000);

  it('fails every path whose closure holds a path that cannot be copied, and writes none of them', async () => {
    const source = join(work, 'broken');
    const broken = await generateSyntheticCache({ dir: source, count: 120, seed: 4, nars: true });
    // The NAR of one early path (which many later paths refer to) is gone.
    const from = await openStore(`file://${source}`);
    let victim: string | undefined;
    for await (const hash of from.listNarInfos()) {
      const info = (await from.getNarInfo(hash))!;
      if (info.references.length === 0) {
        victim = info.storePath;
        unlinkSync(join(source, info.url));
        break;
      }
    }
    expect(victim).toBeDefined();
    const target = join(work, 'broken-target');
    const to = await openStore(`file://${target}`);
    const failed = new Set<string>();
    const summary = await copyAll(from, to, {
      trustedKeys: [broken.publicKey],
      parallelism: 8,
      onPath: (r) => {
        if (r.status === 'failed') failed.add(r.path);
      },
    });
    expect(summary.failed).toBe(failed.size);
    expect(summary.failed).toBeGreaterThan(0);
    // Whatever was written verifies, and no narinfo refers to a path the target lacks.
    const verified = await verifyCache(to, { trustedKeys: [broken.publicKey], contents: true });
    expect(verified.summary.ok).toBe(verified.summary.total);
    expect(verified.summary.total).toBe(120 - summary.failed);
    for await (const hash of to.listNarInfos()) {
      const info = (await to.getNarInfo(hash))!;
      for (const r of info.references) expect(await to.hasNarInfo(r.slice(0, 32))).toBe(true);
    }
  }, 120_000);

  it('fails two listed paths that refer to each other, and writes neither, however the copies interleave', async () => {
    // A hostile cache: two signed paths that refer to each other, copied at once (the case where
    // each graph claims one side before seeing the other is forced in graph.test.ts).
    const source = join(work, 'cycle');
    const cycle = await generateSyntheticCache({
      dir: source,
      count: 2,
      seed: 6,
      nars: true,
      maxReferences: 0,
    });
    const files = readdirSync(source).filter((n) => n.endsWith('.narinfo'));
    const infos = files.map((n) => parseNarInfo(readFileSync(join(source, n), 'utf8')));
    const base = (p: string) => p.slice('/nix/store/'.length);
    for (const [i, info] of infos.entries()) {
      const other = infos[1 - i]!;
      const { sigs: _, ...rest } = info;
      const cyclic = signNarInfo(
        { ...rest, sigs: [], references: [base(other.storePath)].sort() },
        SYNTHETIC_SECRET_KEY,
      );
      writeFileSync(join(source, files[i]!), formatNarInfo(cyclic));
    }
    const from = await openStore(`file://${source}`);
    const target = join(work, 'cycle-target');
    const to = await openStore(`file://${target}`);
    for (let round = 0; round < 5; round++) {
      const summary = await copyAll(from, to, { trustedKeys: [cycle.publicKey], parallelism: 2 });
      expect(summary).toMatchObject({ copied: 0, failed: 2, written: 0 });
      const written = existsSync(target) ? readdirSync(target) : [];
      expect(written.filter((n) => n.endsWith('.narinfo'))).toEqual([]);
    }
  }, 60_000);
});
