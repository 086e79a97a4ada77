/**
 * `cacheReport`: what a maintainer wants to see of a cache at a glance (totals and sizes by
 * compression, the largest closures, upload ages, paths a given key has not signed, closure
 * holes, and what gc would delete), as plain data for `--json` and for the HTML page of
 * `nixcache report`.
 */

/** Objects and bytes. */
export interface ReportCount {
  readonly objects: number;
  readonly bytes: number;
}

/** The data of a cache report. */
export interface CacheReport {
  /** The store's location (no credentials). */
  readonly store: string;
  /** ISO 8601. */
  readonly generatedAt: string;
  readonly totals: {
    readonly narinfos: number;
    readonly narFiles: number;
    /** Compressed NAR bytes stored (the NAR objects' sizes). */
    readonly fileBytes: number;
    /** NarSize summed over the narinfos. */
    readonly narBytes: number;
    readonly listings: number;
    /** Every object of the cache, of every kind. */
    readonly objects: number;
    readonly objectBytes: number;
  };
  readonly byCompression: readonly {
    readonly method: string;
    readonly narinfos: number;
    /** FileSize summed (the NAR object's size where FileSize is absent). */
    readonly fileBytes: number;
    readonly narBytes: number;
  }[];
  /** Top-level paths (no narinfo refers to them) with the largest closures, largest first. */
  readonly largestClosures: readonly {
    readonly path: string;
    readonly closurePaths: number;
    /** NarSize summed over the closure's narinfos that are in the cache. */
    readonly closureBytes: number;
  }[];
  /** Objects by upload age, youngest bucket first. */
  readonly ageHistogram: readonly ({ readonly bucket: string } & ReportCount)[];
  /** Narinfos with no valid signature by `key` (when a key was given). */
  readonly unsigned?: { readonly key: string; readonly count: number; readonly examples: readonly string[] };
  /** References that name paths the cache does not have. */
  readonly closureHoles: {
    readonly count: number;
    readonly examples: readonly { readonly path: string; readonly missing: string }[];
  };
  /** What `gc --dry-run` with the same options would delete and keep, per kind. */
  readonly gc?: {
    readonly options: string;
    readonly deleted: readonly ({ readonly kind: string } & ReportCount)[];
    readonly kept: readonly ({ readonly kind: string } & ReportCount)[];
  };
}
