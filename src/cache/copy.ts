/**
 * `copyPaths`: copies closures between any two binary caches, like `nix copy --from A --to B`:
 * every NAR is verified on the way (hashes, sizes, the CA hash, optionally trusted signatures),
 * recompressed with the target's compression, optionally re-signed, and published references
 * first; `copyAll` copies a whole cache, streaming its listing. Everything from the source is hostile: a path is signed only once its trust was
 * established (a trusted signature, or a CA claim checked against the contents).
 */
import { NixcacheError } from '../errors.js';
import { hashEquals } from '../hash/hash.js';
import { nativeSodium } from '../internal/native.js';
import type { NarInfo } from '../narinfo/types.js';
import { type PublicKey, type SecretKey, toPublicKey } from '../signing/keys.js';
import {
  contentAddressContradiction,
  makeKeyring,
  type TrustedKeys,
  verifyNarInfo,
  verifyNarInfoAsync,
} from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import type { ContentAddress } from '../store-path/content-address.js';
import { formatStorePath, type StorePath } from '../store-path/store-path.js';
import { checkContentAddressHash, parseClaimedContentAddress } from './content-address.js';
import { type GraphResult, type InspectedPath, publishGraph } from './graph.js';
import { forEachBounded } from './pipeline.js';
import { signWith, uploadStagedNar } from './publish.js';
import type { ResumeLog } from './resume.js';
import { withRetry } from './retry.js';
import { inShard, type Shard } from './shard.js';
import { SharedRun } from './shared-run.js';
import { stageNar } from './stage.js';

/** What inspecting a source path keeps for publishing it. */
interface Source {
  readonly info: NarInfo;
  readonly ca?: ContentAddress;
}

export interface CopyOptions {
  /** Copy the closure (default true). */
  readonly closure?: boolean;
  /** Refuse paths that no key here signed (and whose CA claim does not hold). */
  readonly trustedKeys?: TrustedKeys;
  /**
   * Add signatures by these keys. Only trusted paths are signed: with secret keys, a path must be
   * signed by a trusted key or by one of these keys (their public halves are trusted, as in Nix),
   * or have a CA claim that the contents prove; others fail.
   */
  readonly secretKeys?: readonly SecretKey[];
  readonly parallelism?: number;
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (
    event: { type: 'done' | 'skip'; path: string } | { type: 'failed'; path: string; error: Error },
  ) => void;
}

/**
 * Copies paths (and by default their closures) from one cache to another.
 *
 * @throws {NixcacheError} BAD_KEY for a malformed trusted key, BAD_STORE_PATH for a bad path;
 *   per-path failures are in the result's `failed` list.
 * @example await copyPaths(from, to, ['/nix/store/…-hello'], { trustedKeys: ['cache.nixos.org-1:…'] })
 */
export function copyPaths(
  from: BinaryCacheStore,
  to: BinaryCacheStore,
  paths: readonly string[],
  options: CopyOptions = {},
): Promise<GraphResult> {
  return copyWithin(from, to, paths, options, undefined);
}

/**
 * `copyPaths`, as one of the graphs of a run that share what they publish (`copyAll`), with the
 * source narinfo of a root already read (`known`).
 */
async function copyWithin(
  from: BinaryCacheStore,
  to: BinaryCacheStore,
  paths: readonly string[],
  options: CopyOptions,
  shared: SharedRun | undefined,
  known?: NarInfo,
): Promise<GraphResult> {
  if (from.storeDir !== to.storeDir) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `cannot copy between store directories ${from.storeDir} and ${to.storeDir}`,
    );
  }
  const secretKeys = options.secretKeys ?? [];
  // Never sign what was not verified: signing keys imply a trust check, with their own public
  // halves trusted (Nix adds the keys of secret-key-files to the trusted keys the same way).
  const ring =
    options.trustedKeys || secretKeys.length
      ? makeKeyring([
          ...(options.trustedKeys ? makeKeyring(options.trustedKeys).values() : []),
          ...secretKeys.map((k): PublicKey => toPublicKey(k)),
        ])
      : undefined;
  const signal = options.signal;
  /** Reads and judges the source narinfo; downloads nothing. */
  const inspect = async (sp: StorePath): Promise<InspectedPath<Source>> => {
    const full = formatStorePath(sp);
    const info =
      known?.storePath === full
        ? known
        : await withRetry(() => from.getNarInfo(full, { ...(signal && { signal }) }), { signal });
    if (!info) throw new NixcacheError('NOT_FOUND', `${full} is not in ${from.location}`, { path: full });
    const ca = info.ca === undefined ? undefined : parseClaimedContentAddress(full, info.ca);
    // What the narinfo itself contradicts fails before anything is downloaded.
    const contradiction = contentAddressContradiction(info);
    if (contradiction !== undefined) {
      throw new NixcacheError('INTEGRITY', `${full} in ${from.location}: ${contradiction}`, {
        path: full,
        field: 'CA',
      });
    }
    if (ring) {
      // libsodium on this thread (~70 µs) where it is installed: cheaper than a round trip to
      // the thread pool, which is left to OpenSSL and WebCrypto (off this thread).
      const trust = nativeSodium() ? verifyNarInfo(info, ring) : await verifyNarInfoAsync(info, ring);
      // A claim only the contents can prove is checked below, before anything is uploaded.
      if (!trust.trusted && !(trust.contentAddressed && trust.contentAddressNeedsContents)) {
        const why = options.trustedKeys
          ? 'is not signed by a trusted key'
          : `is not signed by a trusted key, so it is not re-signed (trust its signer with --trusted-public-key)`;
        throw new NixcacheError('INTEGRITY', `${full} in ${from.location} ${why}`, { path: full });
      }
    }
    return { references: info.references, data: { info, ...(ca && { ca }) } };
  };
  const publish = async (sp: StorePath, { data: { info, ca } }: InspectedPath<Source>): Promise<NarInfo> => {
    const full = formatStorePath(sp);
    // getNar verifies FileHash, NarSize and NarHash by the end of the stream, before staging ends.
    const staged = await stageNar(from.getNar(info, { ...(signal && { signal }) }), {
      compression: to.config.compression,
      ...(to.config.compressionLevel !== undefined && { compressionLevel: to.config.compressionLevel }),
      listing: to.config.writeNarListing,
      ...(ca && { contentAddress: ca }),
      ...(signal && { signal }),
    });
    try {
      if (!hashEquals(staged.narHash, info.narHash)) {
        throw new NixcacheError('INTEGRITY', `${full}: NAR hash changed while copying`, { path: full });
      }
      // As Nix on import, for every claim, signed or not: the contents must have the CA hash.
      if (ca) checkContentAddressHash(full, ca, staged.contentAddressHash);
      const url = await uploadStagedNar(to, staged, sp.hash, { ...(signal && { signal }) });
      const { original: _, ...fields } = info;
      const copied: NarInfo = {
        ...fields,
        url,
        compression: to.config.compression,
        fileHash: staged.fileHash,
        fileSize: staged.fileSize,
      };
      return signWith(copied, secretKeys);
    } finally {
      await staged.dispose();
    }
  };
  return publishGraph(
    to,
    paths,
    { inspect, publish },
    {
      ...(options.closure !== undefined && { closure: options.closure }),
      ...(options.parallelism !== undefined && { parallelism: options.parallelism }),
      ...(options.force !== undefined && { force: options.force }),
      ...(signal && { signal }),
      ...(shared && { shared }),
      onSkip: (path) => options.onProgress?.({ type: 'skip', path }),
      onDone: (path) => options.onProgress?.({ type: 'done', path }),
      onFailed: (path, error) => options.onProgress?.({ type: 'failed', path, error }),
    },
  );
}

/** One listed path's outcome in {@link copyAll}, as `onPath` gets it and the resume log keeps it. */
export interface CopyAllRecord {
  readonly hashPart: string;
  /** The store path (the hash part when its narinfo could not be read). */
  readonly path: string;
  /**
   * copied: it (and whatever of its closure the target lacked) was copied; skipped: the target had
   * it when its turn came (from before the run, or brought over as another path's reference).
   */
  readonly status: 'copied' | 'skipped' | 'failed';
  readonly error?: { readonly code: string; readonly message: string };
}

/** Counts of {@link copyAll} (the paths went to `onPath`). */
export interface CopyAllSummary {
  readonly copied: number;
  readonly skipped: number;
  readonly failed: number;
  /**
   * Paths this run wrote to the target: the copied ones and the references they brought along
   * (which count as skipped when their own turn comes). Not taken from a resume log.
   */
  readonly written: number;
}

export interface CopyAllOptions extends Omit<CopyOptions, 'closure'> {
  /** Copy only this part of a stable partition of the source's paths by hash part. */
  readonly shard?: Shard;
  /** Log of an interrupted run: listed paths it holds are skipped, new outcomes appended. */
  readonly resume?: ResumeLog<CopyAllRecord>;
  /** Counts to start from (what an earlier run logged, with `resume`). */
  readonly previous?: Omit<CopyAllSummary, 'written'>;
  /** Each listed path's outcome once final; a returned promise is awaited (back-pressure). */
  readonly onPath?: (record: CopyAllRecord) => void | Promise<void>;
}

/**
 * Copies every path of a cache (`nix copy --all`), streaming the source's listing with
 * back-pressure: each listed path is copied with its closure (references first, so the target's
 * invariant holds at every moment), `parallelism` listed paths at a time, and only counts are
 * kept, so memory does not grow with the size of the cache (heap snapshots 2.5, 6 and 12 s into
 * a copy of 100,000 synthetic paths, whose closures reach 5,000-15,000 paths: 14 MB live each
 * time). A listed path's graph holds the source narinfos of its closure until they are published.
 * A reference that another listed path already brought over is skipped when its turn comes.
 *
 * @throws {NixcacheError} BAD_ARGUMENT for caches of different store directories; UNSUPPORTED
 *   when the source cannot be listed; NETWORK when the listing fails; IO for the resume log.
 * @example await copyAll(from, to, { trustedKeys: ['cache.example.org-1:…'], shard: { index: 1, count: 4 } })
 */
export async function copyAll(
  from: BinaryCacheStore,
  to: BinaryCacheStore,
  options: CopyAllOptions = {},
): Promise<CopyAllSummary> {
  const { shard, resume, signal, onPath, previous, ...copyOptions } = options;
  const counts = { copied: 0, skipped: 0, failed: 0, ...previous, written: 0 };
  // Closures of the listed paths overlap: what one of them is copying, the others wait for.
  const shared = new SharedRun();
  async function* listed(): AsyncGenerator<string> {
    for await (const hashPart of from.listNarInfos({ ...(signal && { signal }) })) {
      if (!inShard(hashPart, shard) || resume?.has(hashPart)) continue;
      yield hashPart;
    }
  }
  await forEachBounded(
    listed(),
    { parallelism: options.parallelism ?? 4, ...(signal && { signal }) },
    async (hashPart) => {
      let record: CopyAllRecord;
      // Brought over (by this run) as a reference of a path copied before: nothing to read. (A
      // published path is never claimed again: graphs look in `recent` before they claim.)
      const done = shared.recent.get(hashPart);
      if (done !== undefined) {
        record = { hashPart, path: done, status: 'skipped' };
        resume?.append(record);
        counts.skipped++;
        await onPath?.(record);
        return;
      }
      try {
        const info = await withRetry(() => from.getNarInfo(hashPart, { ...(signal && { signal }) }), {
          signal,
        });
        if (!info) throw new NixcacheError('NOT_FOUND', `${hashPart}.narinfo vanished from ${from.location}`);
        const result = await copyWithin(
          from,
          to,
          [info.storePath],
          { ...copyOptions, parallelism: 2, ...(signal && { signal }) },
          shared,
          info,
        );
        counts.written += result.pushed.length;
        const failed = result.failed.find((f) => f.path === info.storePath) ?? result.failed[0];
        if (failed) throw failed.error;
        record = {
          hashPart,
          path: info.storePath,
          status: result.pushed.includes(info.storePath) ? 'copied' : 'skipped',
        };
      } catch (e) {
        signal?.throwIfAborted();
        const error = e as Error;
        record = {
          hashPart,
          path: hashPart,
          status: 'failed',
          error: { code: error instanceof NixcacheError ? error.code : error.name, message: error.message },
        };
      }
      signal?.throwIfAborted();
      resume?.append(record);
      counts[record.status]++;
      await onPath?.(record);
    },
  );
  return counts;
}
