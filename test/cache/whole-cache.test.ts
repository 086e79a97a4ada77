/**
 * The building blocks of whole-cache runs: bounded pulling from a listing, the stable shard
 * partition, the compact hash-part set and the resume log.
 */
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashPartSet } from '../../src/cache/hash-part-set.js';
import { forEachBounded } from '../../src/cache/pipeline.js';
import { ResumeLog } from '../../src/cache/resume.js';
import { inShard, parseShard, shardOf } from '../../src/cache/shard.js';
import { NixcacheError } from '../../src/errors.js';
import { hashPart } from '../helpers/arbitraries.js';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('forEachBounded', () => {
  it('runs every item, never more than parallelism at once, pulling only when a slot is free', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 9 }), async (n, p) => {
        let pulled = 0;
        let running = 0;
        let maxRunning = 0;
        let maxAhead = 0;
        let finished = 0;
        async function* source() {
          for (let i = 0; i < n; i++) {
            pulled++;
            maxAhead = Math.max(maxAhead, pulled - finished);
            yield i;
          }
        }
        const seen: number[] = [];
        await forEachBounded(source(), { parallelism: p }, async (i) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await tick();
          seen.push(i);
          running--;
          finished++;
        });
        expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
        expect(maxRunning).toBeLessThanOrEqual(p);
        expect(maxAhead).toBeLessThanOrEqual(p);
      }),
      { numRuns: 40 },
    );
  });

  it('stops at the first error, closes the source and rethrows', async () => {
    let closed = false;
    let pulled = 0;
    async function* source() {
      try {
        for (let i = 0; i < 1_000_000; i++) {
          pulled++;
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    await expect(
      forEachBounded(source(), { parallelism: 4 }, async (i) => {
        await tick();
        if (i === 10) throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(closed).toBe(true);
    expect(pulled).toBeLessThan(20);
  });

  it('stops pulling when the signal aborts', async () => {
    const controller = new AbortController();
    let started = 0;
    const run = forEachBounded(
      (function* () {
        for (let i = 0; ; i++) yield i;
      })(),
      { parallelism: 2, signal: controller.signal },
      async () => {
        if (++started === 5) controller.abort();
        await tick();
      },
    );
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(started).toBeLessThan(10);
  });
});

describe('shards', () => {
  it('parses I/N and refuses anything else with a typed error', () => {
    expect(parseShard('2/8')).toEqual({ index: 2, count: 8 });
    for (const bad of ['0/3', '4/3', '1/0', '1', 'a/b', '-1/2', '1/2/3', ''])
      expect(() => parseShard(bad)).toThrow(NixcacheError);
  });

  it('the N shards are disjoint, cover every path, and never change', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(hashPart, { maxLength: 200 }),
        fc.integer({ min: 1, max: 12 }),
        (hashes, n) => {
          for (const h of hashes) {
            const owners = Array.from({ length: n }, (_, i) => i + 1).filter((i) =>
              inShard(h, { index: i, count: n }),
            );
            expect(owners).toEqual([shardOf(h, n)]);
          }
        },
      ),
    );
    expect(shardOf('syd87l2rxw8cbsxmxl853h0r6pdwhwjr', 7)).toBe(
      shardOf('syd87l2rxw8cbsxmxl853h0r6pdwhwjr', 7),
    );
  });

  it('splits random hash parts evenly', () => {
    const counts = new Array(4).fill(0);
    for (const h of fc.sample(hashPart, { numRuns: 4000, seed: 42 })) counts[shardOf(h, 4) - 1]++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
  });
});

describe('HashPartSet', () => {
  it('behaves as a Set of hash parts, through growth', () => {
    fc.assert(
      fc.property(
        fc.array(hashPart, { maxLength: 3000 }),
        fc.array(hashPart, { maxLength: 50 }),
        (adds, probes) => {
          const set = new HashPartSet();
          const model = new Set<string>();
          for (const h of adds) {
            expect(set.add(h)).toBe(!model.has(h));
            model.add(h);
          }
          expect(set.size).toBe(model.size);
          for (const h of [...adds, ...probes]) expect(set.has(h)).toBe(model.has(h));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('answers false for text that is not a hash part and refuses to add it', () => {
    const set = new HashPartSet();
    expect(set.has('not a hash')).toBe(false);
    expect(() => set.add('eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee')).toThrow(NixcacheError);
  });

  it('costs under 60 bytes per member', () => {
    const set = new HashPartSet();
    for (const h of fc.sample(hashPart, { numRuns: 100_000, seed: 1 })) set.add(h);
    expect(set.size).toBeGreaterThan(99_000);
    expect(set.byteLength / set.size).toBeLessThan(60);
  });
});

describe('ResumeLog', () => {
  const hashes = fc.sample(fc.uniqueArray(hashPart, { minLength: 6, maxLength: 6 }), {
    numRuns: 1,
    seed: 7,
  })[0]!;

  it('skips what an earlier run logged, drops a line cut short, and appends the rest', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nixcache-resume-')), 'run.ndjson');
    const first = await ResumeLog.open<{ hashPart: string; status: string }>(file);
    first.append({ hashPart: hashes[0]!, status: 'ok' });
    first.append({ hashPart: hashes[1]!, status: 'corrupt' });
    first.close();
    appendFileSync(file, `{"hashPart":"${hashes[2]}","sta`); // killed mid-write
    const previous: string[] = [];
    const second = await ResumeLog.open<{ hashPart: string; status: string }>(file, {
      onPrevious: (r) => previous.push(`${r.hashPart}:${r.status}`),
    });
    expect(previous).toEqual([`${hashes[0]}:ok`, `${hashes[1]}:corrupt`]);
    expect(second.has(hashes[0]!)).toBe(true);
    expect(second.has(hashes[2]!)).toBe(false);
    second.append({ hashPart: hashes[2]!, status: 'ok' });
    second.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).hashPart)).toEqual(hashes.slice(0, 3));
  });

  it('names the file and line of a line that is not a report', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nixcache-resume-')), 'run.ndjson');
    writeFileSync(file, `{"hashPart":"${hashes[0]}"}\n{"summary":{}}\n`);
    await expect(ResumeLog.open(file)).rejects.toThrow(/run\.ndjson line 2/);
  });
});
