/**
 * `verifyCache`: checks what a binary cache holds, like `nix store verify --store <cache>` but with
 * a report per path: the narinfo parses and is the path it claims to be, a trusted key signed it
 * (or its CA claim holds), and, with `contents`, the NAR downloads, decompresses, is a valid NAR,
 * and matches FileHash/FileSize, NarHash/NarSize and the CA hash. Whole caches run in bounded
 * memory (issue 11): the listing is pulled with back-pressure, signatures are checked on the
 * thread pool (or everything runs on `workers` threads, verify-pool.ts), each report goes to
 * `onReport` (and a resume log) once final, and only the summary is kept; `shard` and `resume`
 * split a cache between machines and continue an interrupted run. The check of one path is in
 * verify-check.ts.
 */
import { availableParallelism } from 'node:os';
import { NixcacheError } from '../errors.js';
import type { Ed25519Backend } from '../signing/ed25519.js';
import {
  type Keyring,
  makeKeyring,
  type TrustedKeys,
  verifyNarInfo,
  verifyNarInfoAsync,
} from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { storeOpenSpec } from '../store/open.js';
import { isHashPart } from '../store-path/store-path.js';
import { largestFirst } from './largest-first.js';
import { forEachBounded } from './pipeline.js';
import type { ResumeLog } from './resume.js';
import { inShard, type Shard } from './shard.js';
import { type CheckTrust, hashPartOfQuery, type PathReport, verifyOne } from './verify-check.js';
import { verifyOnWorkers } from './verify-pool.js';

export type { PathReport, PathStatus } from './verify-check.js';

/** Paths whose narinfos are read ahead, with contents, to check the largest NAR among them first. */
const LARGEST_FIRST_WINDOW = 16;

export interface VerifyOptions {
  readonly trustedKeys: TrustedKeys;
  /** Download and check every NAR (default true). */
  readonly contents?: boolean;
  /**
   * Paths to check (hash parts, basenames or full paths), as a list or a stream (pulled only as
   * slots free up); default: every narinfo in the cache, listed as the run goes.
   */
  readonly paths?: Iterable<string> | AsyncIterable<string>;
  /**
   * Paths checked at once (default 64 without contents; with contents, one per core for a
   * file:// cache and 4 for a remote one).
   */
  readonly parallelism?: number;
  /** Check only this part of a stable partition of the paths by hash part (`--shard I/N`). */
  readonly shard?: Shard;
  /**
   * The log of an interrupted run (`--resume FILE`): paths it holds are skipped, and each new
   * report is appended to it once final. Count its earlier reports with `previous`.
   */
  readonly resume?: ResumeLog<PathReport>;
  /** Counts to start the summary from (the reports an earlier run logged, with `resume`). */
  readonly previous?: VerifySummary;
  /**
   * Signature checks: 'async' (default) on libuv's thread pool (WebCrypto in browsers), so they
   * run beside the reads; 'sync' on the main thread. `backend` picks the curve implementation.
   */
  readonly signatures?: 'async' | 'sync';
  readonly backend?: Ed25519Backend;
  /**
   * Worker threads that check the paths (default 0: all on this thread). Each opens the store
   * again from its URL, so the store must come from `openStore(url)` without an injected client
   * or fetch (`storeOpenSpec`). Signatures are then checked synchronously in the workers, and
   * `parallelism` is split between them.
   */
  readonly workers?: number;
  readonly signal?: AbortSignal;
  /**
   * Receives each report as soon as it is final; nothing else keeps it. A returned promise is
   * awaited before that slot takes another path, so a slow consumer (a pipe) slows the run down
   * instead of queueing reports in memory.
   */
  readonly onReport?: (report: PathReport) => void | Promise<void>;
  /** Called as each NAR streams through the checks, with the number of NAR bytes just checked. */
  readonly onBytes?: (bytes: number) => void;
  /** Called when a path is queued for checking (as the listing streams, with `--all`). */
  readonly onQueued?: (query: string) => void;
}

export interface VerifySummary {
  readonly total: number;
  readonly ok: number;
  readonly untrusted: number;
  readonly corrupt: number;
  readonly 'missing-nar': number;
  readonly missing: number;
  readonly unreadable: number;
  readonly error: number;
  /** Compressed NAR bytes downloaded and NAR bytes checked. */
  readonly narBytes: number;
}

/** What a run returns: only counts, whatever the size of the cache (reports go to `onReport`). */
export interface VerifyResult {
  readonly summary: VerifySummary;
  /** True when every path is ok. */
  readonly ok: boolean;
}

type MutableSummary = { -readonly [K in keyof VerifySummary]: VerifySummary[K] };

/**
 * A summary with no paths, or a copy of `from` to add to.
 *
 * @example const s = emptyVerifySummary(); addToVerifySummary(s, report, true)
 */
export function emptyVerifySummary(from?: VerifySummary): MutableSummary {
  return {
    total: 0,
    ok: 0,
    untrusted: 0,
    corrupt: 0,
    'missing-nar': 0,
    missing: 0,
    unreadable: 0,
    error: 0,
    narBytes: 0,
    ...from,
  };
}

/**
 * Counts one report into a summary (NAR bytes only when `contents` were checked).
 *
 * @example addToVerifySummary(summary, { hashPart, status: 'ok', narSize: 10 }, true)
 */
export function addToVerifySummary(summary: MutableSummary, report: PathReport, contents: boolean): void {
  summary.total++;
  summary[report.status]++;
  if (contents && report.status === 'ok') summary.narBytes += report.narSize ?? 0;
}

/** True when `query` belongs to the shard (a query that names no hash part goes to shard 1). */
function queryInShard(query: string, shard: Shard | undefined): boolean {
  if (shard === undefined || shard.count === 1) return true;
  try {
    return inShard(hashPartOfQuery(query), shard);
  } catch {
    return shard.index === 1;
  }
}

/**
 * Verifies the narinfos (and with `contents`, the NARs) of a cache, in bounded memory: the
 * listing (or `paths`) is pulled only as slots free up, reports go to `onReport` as they are
 * made, and only the summary is kept, so a million-path cache costs what ten paths do.
 *
 * @throws {NixcacheError} BAD_KEY for a malformed trusted key; UNSUPPORTED when listing an HTTP
 *   cache without `paths`; NETWORK when the listing itself fails; IO when the resume log cannot
 *   be written.
 * @example
 * const { summary } = await verifyCache(store, {
 *   trustedKeys: ['cache.example.org-1:…'],
 *   onReport: (r) => { if (r.status !== 'ok') console.log(r.status, r.storePath ?? r.hashPart) },
 * })
 */
export async function verifyCache(store: BinaryCacheStore, options: VerifyOptions): Promise<VerifyResult> {
  const ring: Keyring = makeKeyring(options.trustedKeys);
  const contents = options.contents ?? true;
  const signal = options.signal;
  const backend = options.backend === undefined ? {} : { backend: options.backend };
  const checkTrust: CheckTrust =
    options.signatures === 'sync'
      ? (info) => verifyNarInfo(info, ring, backend)
      : (info) => verifyNarInfoAsync(info, ring, backend);
  const { shard, resume } = options;
  const summary = emptyVerifySummary(options.previous);
  async function* selected(): AsyncGenerator<string> {
    const source = options.paths ?? store.listNarInfos({ ...(signal && { signal }) });
    for await (const query of source) {
      if (!queryInShard(query, shard)) continue;
      if (resume?.has(hashPartOfQuery(query))) continue;
      options.onQueued?.(query);
      yield query;
    }
  }
  // With contents, the largest NARs of the next few go first, so that the longest single check
  // overlaps the others instead of running alone at the end (largest-first.ts).
  const queries = () =>
    contents ? largestFirst(store, selected(), LARGEST_FIRST_WINDOW, signal) : selected();
  // Without contents each check is a small read and a signature check on the thread pool: many
  // in flight hide the file/network latency and keep the pool busy. With contents a check is
  // mostly decompression, one core per NAR: from a local cache nothing waits on the network, and
  // more checks than cores only share the cores, which makes the largest NAR (started first)
  // finish later; from a remote one a few more overlap the downloads.
  const local = store.config.scheme === 'file';
  const parallelism = options.parallelism ?? (contents ? (local ? availableParallelism() : 4) : 64);
  const record = async (report: PathReport): Promise<void> => {
    // Logged only once final; a report about something that is not a hash part is not logged
    // (it is cheap to make again).
    if (resume && isHashPart(report.hashPart)) resume.append(report);
    addToVerifySummary(summary, report, contents);
    await options.onReport?.(report);
  };
  const workers = options.workers ?? 0;
  if (workers > 0) {
    const spec = storeOpenSpec(store);
    if (!spec) {
      throw new NixcacheError(
        'UNSUPPORTED',
        `${store.location}: worker threads need a store opened by openStore(url) without an injected client or fetch`,
      );
    }
    await verifyOnWorkers(queries(), {
      workers,
      init: {
        store: spec,
        trustedKeys: [...ring.values()],
        contents,
        parallelism: Math.max(1, Math.ceil(parallelism / workers)),
        ...(options.backend !== undefined && { backend: options.backend }),
      },
      onReport: record,
      ...(options.onBytes && { onBytes: options.onBytes }),
      ...(signal && { signal }),
    });
    return { summary, ok: summary.ok === summary.total };
  }
  await forEachBounded(queries(), { parallelism, ...(signal && { signal }) }, async (query) => {
    signal?.throwIfAborted();
    const report = await verifyOne(store, query, checkTrust, contents, signal, options.onBytes);
    signal?.throwIfAborted();
    await record(report);
  });
  return { summary, ok: summary.ok === summary.total };
}
