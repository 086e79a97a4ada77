/**
 * Largest NARs first, within a bounded look-ahead: `verifyCache` with contents runs a few NARs at
 * once, and one large NAR decodes on one core, so a run ends no sooner than its largest NAR's
 * check. Started last (a listing's order is arbitrary), that check runs alone at the end while
 * the other cores idle; started first, it overlaps everything else (longest-job-first, the
 * classic rule for the shortest makespan). The narinfos of the next `window` paths are read
 * ahead (small reads; the checks read them again) and the largest of them goes next.
 */
import type { BinaryCacheStore } from '../store/binary-cache.js';

interface Pending {
  readonly query: string;
  /** NarSize, or -1 when the narinfo could not be read (the check reports why). */
  readonly size: number;
}

/**
 * Yields every query of `source`, each time the largest (by NarSize) of the next `window` ones.
 *
 * @example for await (const q of largestFirst(store, listing, 16)) check(q)
 */
export async function* largestFirst(
  store: BinaryCacheStore,
  source: AsyncIterable<string>,
  window: number,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  const sizeOf = async (query: string): Promise<Pending> => {
    try {
      const info = await store.getNarInfo(query, { ...(signal && { signal }) });
      return { query, size: info?.narSize ?? -1 };
    } catch {
      return { query, size: -1 };
    }
  };
  const ahead: Promise<Pending>[] = [];
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      while (!done && ahead.length < window) {
        const step = await iterator.next();
        if (step.done) done = true;
        else ahead.push(sizeOf(step.value));
      }
      if (!ahead.length) return;
      const known = await Promise.all(ahead);
      let best = 0;
      for (let i = 1; i < known.length; i++) if (known[i]!.size > known[best]!.size) best = i;
      ahead.splice(best, 1);
      yield known[best]!.query;
    }
  } finally {
    if (!done) await iterator.return?.();
  }
}
