/**
 * `push --skip-upstream URL --upstream-key KEY`: the caches a push may rely on instead of uploading
 * (typically https://cache.nixos.org). A path counts as served upstream only when an upstream has
 * its narinfo, for the same store path, with a valid signature by one of the upstream keys; then
 * Nix can substitute it from there, so the push walks through it (its references may still need
 * uploading) without uploading it. Lookups run concurrently and each path is asked once per run.
 *
 * An upstream that cannot be reached is an error, unless `optional`: then nothing is skipped
 * (every path is pushed) and `unavailable` says why.
 */
import { NixcacheError } from '../errors.js';
import type { NarInfo } from '../narinfo/types.js';
import { makeKeyring, type TrustedKeys, verifyNarInfoAsync } from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { openStore } from '../store/open.js';
import { createLimit } from './limit.js';
import { withRetry } from './retry.js';

export interface UpstreamOptions {
  /** Upstream cache URLs (any store URL nixcache opens). */
  readonly urls: readonly string[];
  /** Keys whose signatures make an upstream narinfo count. */
  readonly trustedKeys: TrustedKeys;
  /** Push everything instead of failing when an upstream cannot be reached. */
  readonly optional?: boolean;
  /** The store directory of the cache being pushed to; an upstream's must be the same. */
  readonly storeDir: string;
  /** Lookups in flight at once (default 16). */
  readonly parallelism?: number;
  readonly signal?: AbortSignal;
  /** Stores to use instead of opening `urls` (tests, custom clients); same order. */
  readonly stores?: readonly BinaryCacheStore[];
}

/** Where a path is served. */
export interface UpstreamHit {
  readonly location: string;
  readonly info: NarInfo;
}

/** The upstream caches of one push. */
export class Upstreams {
  readonly #stores: readonly BinaryCacheStore[];
  readonly #ring: ReturnType<typeof makeKeyring>;
  readonly #known = new Map<string, Promise<UpstreamHit | undefined>>();
  readonly #limit: ReturnType<typeof createLimit>;
  readonly #signal: AbortSignal | undefined;
  readonly #owned: boolean;
  /** Why nothing is skipped (an optional upstream could not be reached); undefined when in use. */
  unavailable: string | undefined;
  /** Paths found served upstream so far. */
  served = 0;
  /** Lookups that failed in `optional` mode (those paths were pushed). */
  failedLookups = 0;
  readonly #optional: boolean;

  private constructor(stores: readonly BinaryCacheStore[], options: UpstreamOptions, owned: boolean) {
    this.#stores = stores;
    this.#ring = makeKeyring(options.trustedKeys);
    this.#limit = createLimit(options.parallelism ?? 16);
    this.#signal = options.signal;
    this.#owned = owned;
    this.#optional = options.optional ?? false;
  }

  /**
   * Opens the upstreams and checks that each answers with a `nix-cache-info` for the same store
   * directory.
   *
   * @throws {NixcacheError} BAD_ARGUMENT without a trusted key or for a different store
   *   directory; NETWORK (naming the upstream) when one cannot be reached and `optional` is not set.
   * @example const up = await Upstreams.open({ urls: ['https://cache.nixos.org'], trustedKeys: [key], storeDir: '/nix/store' })
   */
  static async open(options: UpstreamOptions): Promise<Upstreams> {
    if ([...makeKeyring(options.trustedKeys).keys()].length === 0)
      throw new NixcacheError('BAD_ARGUMENT', 'skipping upstream paths needs at least one upstream key', {
        field: 'upstream-key',
      });
    const owned = options.stores === undefined;
    const stores = options.stores ?? (await Promise.all(options.urls.map((url) => openStore(url))));
    const upstreams = new Upstreams(stores, options, owned);
    const signal = options.signal;
    try {
      for (const store of stores) {
        const info = await withRetry(() => store.getCacheInfo({ ...(signal && { signal }) }), { signal });
        if (!info)
          throw new NixcacheError('NOT_FOUND', `${store.location} is not a binary cache (no nix-cache-info)`);
        if ((info.storeDir ?? '/nix/store') !== options.storeDir) {
          throw new NixcacheError(
            'BAD_ARGUMENT',
            `upstream ${store.location} serves ${info.storeDir}, not ${options.storeDir}`,
            { field: 'skip-upstream', expected: options.storeDir, actual: info.storeDir ?? '/nix/store' },
          );
        }
      }
    } catch (e) {
      const why = (e as Error).message;
      if (options.optional && !(e instanceof NixcacheError && e.code === 'BAD_ARGUMENT')) {
        upstreams.unavailable = why;
        return upstreams;
      }
      await upstreams.close();
      if (e instanceof NixcacheError && e.code !== 'NETWORK' && e.code !== 'NOT_FOUND') throw e;
      throw new NixcacheError(
        'NETWORK',
        `upstream cache unreachable: ${why} (use --upstream-optional to push everything instead)`,
        {},
        { cause: e },
      );
    }
    return upstreams;
  }

  /**
   * Where `hashPart` is served with a trusted signature, or undefined (also when the upstreams
   * are unavailable). Asked once per path per run.
   *
   * @throws {NixcacheError} NETWORK when an upstream fails during the run (with `optional` the
   *   path counts as not served and `failedLookups` grows).
   */
  lookup(hashPart: string): Promise<UpstreamHit | undefined> {
    if (this.unavailable !== undefined) return Promise.resolve(undefined);
    let known = this.#known.get(hashPart);
    if (!known) {
      known = this.#limit(() => this.#ask(hashPart));
      this.#known.set(hashPart, known);
    }
    return known;
  }

  async #ask(hashPart: string): Promise<UpstreamHit | undefined> {
    const signal = this.#signal;
    for (const store of this.#stores) {
      let info: NarInfo | undefined;
      try {
        info = await withRetry(() => store.getNarInfo(hashPart, { ...(signal && { signal }) }), { signal });
      } catch (e) {
        // A narinfo that does not parse or names another path is not a reason to skip.
        if (e instanceof NixcacheError && ['BAD_NARINFO', 'INTEGRITY', 'BAD_STORE_PATH'].includes(e.code))
          continue;
        if (this.#optional && !signal?.aborted) {
          this.failedLookups++;
          return undefined;
        }
        throw e;
      }
      if (!info) continue;
      const trust = await verifyNarInfoAsync(info, this.#ring);
      if (trust.signedBy.length > 0) {
        this.served++;
        return { location: store.location, info };
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    if (this.#owned) await Promise.all(this.#stores.map((s) => s.close()));
  }
}
