/**
 * What the `publishGraph` calls of one run that go on at the same time share (`copyAll`: one per
 * listed path), so that their closures, which overlap, are published once (see graph.ts).
 */
import type { CacheInfo } from '../store/cache-info.js';

/** An async step run once: its first call's promise is kept, unless it rejects (then tried again). */
function onceUnlessFailed<T>(): (step: () => Promise<T>) => Promise<T> {
  let kept: Promise<T> | undefined;
  return (step) => {
    if (!kept) {
      const p = step();
      kept = p;
      p.catch(() => {
        if (kept === p) kept = undefined;
      });
    }
    return kept;
  };
}

/**
 * What concurrent `publishGraph` calls of one run share, so that their closures, which overlap,
 * are published once: the paths being published (by hash part; each claim settles, and is
 * removed, once its narinfo is written or it failed, so only paths in flight are held) and the
 * cache's nix-cache-info, read once.
 */
export class SharedRun {
  readonly claims = new Map<string, Promise<void>>();
  /**
   * The last paths known to be in the cache (full store paths by hash part, at most `RECENT`):
   * published by the run, or found there by one of its graphs. Another graph that asked the
   * cache about one just before its narinfo was written must not publish it again, a graph
   * does not ask the cache about one again, and a listed path brought over as a reference needs
   * no more reading when its turn comes.
   */
  readonly recent = new Map<string, string>();
  /** Reads the cache's nix-cache-info with the given step, once for the run. */
  readonly cacheInfo = onceUnlessFailed<CacheInfo | undefined>();
  /** Writes a missing nix-cache-info with the given step, once for the run. */
  readonly ensureCacheInfo = onceUnlessFailed<void>();

  /**
   * Which claimed paths wait for which (a referrer for its references), across the graphs. A
   * graph refuses a reference cycle among its own paths, but a hostile cache's cycle can span two
   * graphs (each claimed one side before it saw the other) and would leave both waiting forever.
   */
  readonly #waits = new Map<string, Set<string>>();

  /** Remembers that `hash` (store path `full`) is in the cache: published, or found there. */
  published(hash: string, full: string): void {
    this.recent.set(hash, full);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
  }

  /**
   * Records that claimed path `from` waits for `to`; false, recording nothing, when `to` already
   * waits (through any chain of claims) for `from`: the two are on a reference cycle.
   */
  wait(from: string, to: string): boolean {
    const seen = new Set<string>();
    const stack = [to];
    while (stack.length) {
      const hash = stack.pop()!;
      if (hash === from) return false;
      if (seen.has(hash)) continue;
      seen.add(hash);
      for (const next of this.#waits.get(hash) ?? []) stack.push(next);
    }
    let waits = this.#waits.get(from);
    if (!waits) {
      waits = new Set();
      this.#waits.set(from, waits);
    }
    waits.add(to);
    return true;
  }

  /** Forgets a settled claim's waits. */
  settled(hash: string): void {
    this.#waits.delete(hash);
  }
}

/**
 * Published paths a shared run remembers (~100 bytes each): far more than are asked about in
 * one round trip, and enough that most listed paths of a cache of closures are found there.
 */
const RECENT = 16_384;

/** What a graph waits on for a path another graph of the run has published. */
export const PUBLISHED = Promise.resolve();

/** A claim on a path this graph publishes: settled exactly once. */
export interface Claim {
  readonly promise: Promise<void>;
  settle(error?: Error): void;
}

/** Claims `hash` (store path `full`) for the calling graph; the claim must be settled. */
export function claim(run: SharedRun, hash: string, full: string): Claim {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  run.claims.set(hash, promise);
  let settled = false;
  return {
    promise,
    settle(error) {
      if (settled) return;
      settled = true;
      run.claims.delete(hash);
      run.settled(hash);
      if (error) reject(error);
      else {
        run.published(hash, full);
        resolve();
      }
    },
  };
}
