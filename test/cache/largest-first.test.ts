/**
 * `largestFirst`: verify with contents checks the largest NAR of the next few first. Every path
 * comes out exactly once, the order is largest-first within the window, the source is read at
 * most `window` paths ahead, and unreadable narinfos still come out (for the check to report).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { largestFirst } from '../../src/cache/largest-first.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';

/** A store that knows only NarSizes (a negative size: the narinfo read fails). */
function storeOf(sizes: ReadonlyMap<string, number>): BinaryCacheStore {
  return {
    async getNarInfo(query: string) {
      const size = sizes.get(query);
      if (size === undefined) return undefined;
      if (size < 0) throw new Error('unreadable');
      return { narSize: size };
    },
  } as unknown as BinaryCacheStore;
}

async function collect(store: BinaryCacheStore, queries: readonly string[], window: number) {
  let pulled = 0;
  let yielded = 0;
  let maxAhead = 0;
  async function* source() {
    for (const q of queries) {
      pulled++;
      maxAhead = Math.max(maxAhead, pulled - yielded);
      yield q;
    }
  }
  const out: string[] = [];
  for await (const q of largestFirst(store, source(), window)) {
    out.push(q);
    yielded++;
  }
  return { out, maxAhead };
}

describe('largestFirst', () => {
  it('puts the largest NAR of a window first', async () => {
    const sizes = new Map([
      ['a', 10],
      ['b', 156],
      ['c', 48],
      ['d', 95],
    ]);
    expect((await collect(storeOf(sizes), ['a', 'b', 'c', 'd'], 16)).out).toEqual(['b', 'd', 'c', 'a']);
    // A window of 2 only looks two ahead.
    expect((await collect(storeOf(sizes), ['a', 'b', 'c', 'd'], 2)).out).toEqual(['b', 'c', 'd', 'a']);
  });

  it('yields every path once, never reads more than the window ahead, keeps unreadable ones', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: -1, max: 1000 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 20 }),
        async (list, window) => {
          const queries = list.map((_, i) => `p${i}`);
          const sizes = new Map<string, number>(list.map((s, i) => [`p${i}`, s]));
          const { out, maxAhead } = await collect(storeOf(sizes), queries, window);
          expect([...out].sort()).toEqual([...queries].sort());
          expect(maxAhead).toBeLessThanOrEqual(window + 1);
          // The same order as a plain model: a buffer of `window`, the first largest out each time.
          const model: string[] = [];
          const buffer: string[] = [];
          let next = 0;
          while (next < queries.length || buffer.length) {
            while (buffer.length < window && next < queries.length) buffer.push(queries[next++]!);
            let best = 0;
            for (let i = 1; i < buffer.length; i++)
              if (sizes.get(buffer[i]!)! > sizes.get(buffer[best]!)!) best = i;
            model.push(buffer.splice(best, 1)[0]!);
          }
          expect(out).toEqual(model);
        },
      ),
    );
  });
});
