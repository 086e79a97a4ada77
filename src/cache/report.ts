/**
 * `cacheReport`: what a maintainer wants to see of a cache at a glance (totals and sizes by
 * compression, the largest closures, upload ages, paths a given key has not signed, closure
 * holes, and what gc would delete), as plain data for `--json` and for the HTML page of
 * `nixcache report`.
 */
import { turn, turnDue } from '../internal/turn.js';
import { makeKeyring, verifyNarInfoAsync } from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { CacheGraph, HAS_LS, HAS_NARINFO, housekeeping, readNarInfoInto } from './cache-graph.js';
import { grow } from './digest-table.js';
import { collectGarbage, DAY_MS, DEFAULT_GRACE_MS, type GcOptions } from './gc.js';
import { forEachBounded } from './pipeline.js';

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

/** What `cacheReport` looks at besides the cache itself. */
export interface ReportOptions {
  /** Count the narinfos without a valid signature by this key (`NAME:BASE64`). */
  readonly key?: string;
  /** Also report what gc with these options would delete (a dry run). */
  readonly gc?: Pick<GcOptions, 'keepDays' | 'roots' | 'graceMs'>;
  /** Closures listed (default 20). */
  readonly top?: number;
  /** Example paths kept per finding (default 20). */
  readonly examples?: number;
  /** Narinfos read at once (default 16). */
  readonly parallelism?: number;
  /** The clock for upload ages (ms since the epoch; default now). */
  readonly now?: number;
  readonly signal?: AbortSignal;
}

const AGE_BUCKETS: readonly [string, number][] = [
  ['under 1 day', DAY_MS],
  ['1-7 days', 7 * DAY_MS],
  ['7-30 days', 30 * DAY_MS],
  ['30-90 days', 90 * DAY_MS],
  ['90-365 days', 365 * DAY_MS],
  ['over 1 year', Number.POSITIVE_INFINITY],
];

/** Closure walks stop after this many visits in all (a report on a huge cache stays bounded). */
const CLOSURE_BUDGET = 20_000_000;

/**
 * Looks at a whole cache (one listing, every narinfo read once, in bounded memory: the
 * typed-array model gc uses, about 150 bytes a path) and returns the report's data.
 *
 * @throws {NixcacheError} UNSUPPORTED for stores that cannot list with sizes and times (HTTP);
 *   BAD_KEY for a malformed key; NETWORK/IO, ABORTED.
 * @example const data = await cacheReport(store, { key: 'my-cache-1:…', gc: { keepDays: 30 } })
 */
export async function cacheReport(
  store: BinaryCacheStore,
  options: ReportOptions = {},
): Promise<CacheReport> {
  const backend = housekeeping(store, 'a report');
  const signal = options.signal;
  const now = options.now ?? Date.now();
  const top = options.top ?? 20;
  const examples = options.examples ?? 20;
  const ring = options.key === undefined ? undefined : makeKeyring([options.key]);
  const keyName = ring ? [...ring.keys()][0]! : undefined;

  const graph = new CacheGraph();
  const ages = AGE_BUCKETS.map(([bucket]) => ({ bucket, objects: 0, bytes: 0 }));
  let objects = 0;
  let objectBytes = 0;
  for await (const o of backend.listObjects('', { recursive: true, ...(signal && { signal }) })) {
    graph.addListed(o);
    objects++;
    objectBytes += o.size;
    const age = Math.max(0, now - o.lastModified);
    const bucket = ages[AGE_BUCKETS.findIndex(([, limit]) => age < limit)]!;
    bucket.objects++;
    bucket.bytes += o.size;
  }

  const listed = graph.paths.size;
  let narSizes = new Float64Array(listed);
  const byCompression = new Map<string, { narinfos: number; fileBytes: number; narBytes: number }>();
  const unsigned = { count: 0, examples: [] as string[] };
  const holes = { count: 0, examples: [] as { path: string; missing: string }[] };
  let narinfos = 0;
  let narBytes = 0;
  function* ids() {
    for (let id = 0; id < listed; id++) if (graph.flags[id]! & HAS_NARINFO) yield id;
  }
  await forEachBounded(
    ids(),
    { parallelism: options.parallelism ?? 16, ...(signal && { signal }) },
    async (id) => {
      const info = await readNarInfoInto(graph, store, id, signal);
      if (!info) return;
      narinfos++;
      narBytes += info.narSize;
      if (id >= narSizes.length) narSizes = grow(narSizes, id + 1);
      narSizes[id] = info.narSize;
      const c = byCompression.get(info.compression) ?? { narinfos: 0, fileBytes: 0, narBytes: 0 };
      c.narinfos++;
      const narObject = graph.narId[id]!;
      c.fileBytes += info.fileSize ?? Math.max(0, graph.narSize[narObject] ?? 0);
      c.narBytes += info.narSize;
      byCompression.set(info.compression, c);
      for (const r of info.references) {
        const ref = graph.findPath(r.slice(0, 32));
        if (ref >= 0 && graph.flags[ref]! & HAS_NARINFO) continue;
        holes.count++;
        if (holes.examples.length < examples)
          holes.examples.push({ path: info.storePath, missing: `${store.storeDir}/${r}` });
      }
      if (ring && (await verifyNarInfoAsync(info, ring)).signedBy.length === 0) {
        unsigned.count++;
        if (unsigned.examples.length < examples) unsigned.examples.push(info.storePath);
      }
    },
  );

  const largestClosures = await largest(graph, narSizes, top, store, signal);
  let narFiles = 0;
  let fileBytes = 0;
  for (let i = 0; i < graph.nars.size; i++) {
    if (graph.narSize[i]! < 0) continue;
    narFiles++;
    fileBytes += graph.narSize[i]!;
  }
  let listings = 0;
  for (let id = 0; id < graph.paths.size; id++) if (graph.flags[id]! & HAS_LS) listings++;

  let gc: CacheReport['gc'];
  if (options.gc) {
    const r = await collectGarbage(store, { ...options.gc, dryRun: true, ...(signal && { signal }) });
    const kinds = ['narinfo', 'ls', 'nar'] as const;
    gc = {
      options: [
        options.gc.keepDays !== undefined ? `--keep-days ${options.gc.keepDays}` : '',
        `--grace ${Math.round((options.gc.graceMs ?? DEFAULT_GRACE_MS) / 3_600_000)}h`,
        options.gc.roots?.length ? `${options.gc.roots.length} --root paths` : '',
      ]
        .filter(Boolean)
        .join(' '),
      deleted: kinds.map((kind) => ({ kind, ...r.deleted[kind] })),
      kept: kinds.map((kind) => ({ kind, ...r.kept[kind] })),
    };
  }

  return {
    store: store.location,
    generatedAt: new Date(now).toISOString(),
    totals: { narinfos, narFiles, fileBytes, narBytes, listings, objects, objectBytes },
    byCompression: [...byCompression]
      .map(([method, c]) => ({ method, ...c }))
      .sort((a, b) => b.fileBytes - a.fileBytes || (a.method < b.method ? -1 : 1)),
    largestClosures,
    ageHistogram: ages,
    ...(keyName !== undefined && { unsigned: { key: keyName, ...unsigned } }),
    closureHoles: holes,
    ...(gc && { gc }),
  };
}

/**
 * The top-level paths (no narinfo refers to them) with the largest closures. Each closure is
 * walked once with a visit stamp per path; the walks stop at CLOSURE_BUDGET visits in all.
 */
async function largest(
  graph: CacheGraph,
  narSizes: Float64Array,
  top: number,
  store: BinaryCacheStore,
  signal: AbortSignal | undefined,
): Promise<CacheReport['largestClosures']> {
  const n = graph.paths.size;
  const referenced = new Uint8Array(n);
  for (let id = 0; id < n; id++) {
    if (!(graph.flags[id]! & HAS_NARINFO)) continue;
    for (const r of graph.referencesOf(id)) if (r !== id) referenced[r] = 1;
  }
  const stamp = new Int32Array(n).fill(-1);
  let stack = new Int32Array(64);
  let budget = CLOSURE_BUDGET;
  const best: { id: number; closurePaths: number; closureBytes: number }[] = [];
  for (let root = 0; root < n && budget > 0; root++) {
    // Up to CLOSURE_BUDGET visits: let timers and Ctrl-C in now and then.
    if ((root & 255) === 0) while (turnDue()) await turn();
    if (!(graph.flags[root]! & HAS_NARINFO) || referenced[root]) continue;
    let top_ = 0;
    let paths = 0;
    let bytes = 0;
    stamp[root] = root;
    stack[top_++] = root;
    while (top_ > 0 && budget-- > 0) {
      const id = stack[--top_]!;
      if (graph.flags[id]! & HAS_NARINFO) {
        paths++;
        bytes += narSizes[id] ?? 0;
      }
      for (const r of graph.referencesOf(id)) {
        if (stamp[r] === root) continue;
        stamp[r] = root;
        stack = grow(stack, top_ + 1);
        stack[top_++] = r;
      }
    }
    best.push({ id: root, closurePaths: paths, closureBytes: bytes });
    best.sort((a, b) => b.closureBytes - a.closureBytes);
    if (best.length > top) best.pop();
  }
  const out: CacheReport['largestClosures'][number][] = [];
  for (const b of best) {
    const info = await store
      .getNarInfo(graph.hashPartOf(b.id), { ...(signal && { signal }) })
      .catch(() => undefined);
    out.push({
      path: info?.storePath ?? `${store.storeDir}/${graph.hashPartOf(b.id)}`,
      closurePaths: b.closurePaths,
      closureBytes: b.closureBytes,
    });
  }
  return out;
}
