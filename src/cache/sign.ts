/**
 * `addSignatures`: the `nix store sign --store <cache>` equivalent (nix-formats.md §5.5). Each
 * narinfo is read, signed, and written back only if it is unchanged since it was read (ETag
 * conditional write), retrying on a conflict, so two signers never lose each other's signature.
 * The read-modify-write itself is `rewriteNarInfo` (rewrite.ts), shared with `removeSignatures`.
 * Like `nix store sign`, it signs what the cache holds without downloading the NARs (it is for
 * the owner's own cache), but never a narinfo whose CA claim contradicts its NarHash. Memory is
 * bounded whatever the size of the cache: the listing streams, each outcome goes to `onProgress`
 * (and the resume log) as it is final, and only counts are kept.
 */
import { NixcacheError } from '../errors.js';
import type { SecretKey } from '../signing/keys.js';
import { contentAddressContradiction } from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { isHashPart } from '../store-path/store-path.js';
import { forEachBounded } from './pipeline.js';
import { signWith } from './publish.js';
import type { ResumeLog } from './resume.js';
import { rewriteNarInfo } from './rewrite.js';
import { inShard, type Shard } from './shard.js';

/** What happened to one narinfo. */
export type SignStatus = 'signed' | 'unchanged' | 'missing' | 'failed';

/** One narinfo's outcome, as `onProgress` gets it and the resume log keeps it. */
export interface SignEvent {
  readonly hashPart: string;
  /** The store path (or the query, when the narinfo is missing or unreadable). */
  readonly path: string;
  readonly status: SignStatus;
  readonly error?: Error;
}

/** What a resume log of `addSignatures` holds per line. */
export interface SignRecord {
  readonly hashPart: string;
  readonly path: string;
  readonly status: SignStatus;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface SignOptions {
  /** Narinfos signed at once (default 16). */
  readonly parallelism?: number;
  /** Read-modify-write attempts per narinfo when another writer races us (default 10). */
  readonly attempts?: number;
  /** Sign only this part of a stable partition of the paths by hash part (`--shard I/N`). */
  readonly shard?: Shard;
  /**
   * The log of an interrupted run: paths it holds are skipped, each new outcome is appended once
   * final. Count its earlier records with `previous`.
   */
  readonly resume?: ResumeLog<SignRecord>;
  /** Counts to start from (the outcomes an earlier run logged, with `resume`). */
  readonly previous?: SignResult;
  readonly signal?: AbortSignal;
  /** Each outcome as it is final; a returned promise is awaited (back-pressure). */
  readonly onProgress?: (event: SignEvent) => void | Promise<void>;
}

/** Counts of outcomes (the paths themselves went to `onProgress`). */
export interface SignResult {
  readonly signed: number;
  readonly unchanged: number;
  readonly missing: number;
  readonly failed: number;
}

/** The hash part a query (hash part, basename or store path) names. */
function hashPartOf(query: string): string {
  const base = query.slice(query.lastIndexOf('/') + 1);
  return base.slice(0, 32);
}

/**
 * Adds signatures by `keys` to the narinfos of `paths` (or every narinfo with `'all'`).
 *
 * @throws {NixcacheError} UNSUPPORTED when listing an HTTP cache for `'all'`.
 * @example await addSignatures(store, 'all', [parseSecretKey(text)])
 */
export async function addSignatures(
  store: BinaryCacheStore,
  paths: readonly string[] | 'all',
  keys: readonly SecretKey[],
  options: SignOptions = {},
): Promise<SignResult> {
  const signal = options.signal;
  const counts = { signed: 0, unchanged: 0, missing: 0, failed: 0, ...options.previous };
  const { shard, resume } = options;
  const signOne = async (query: string): Promise<{ path: string; status: SignStatus }> => {
    const outcome = await rewriteNarInfo(
      store,
      query,
      (info) => {
        // Signing endorses the narinfo: never one that contradicts itself (Nix cannot import it).
        const contradiction = contentAddressContradiction(info);
        if (contradiction !== undefined) {
          throw new NixcacheError(
            'INTEGRITY',
            `${info.storePath} in ${store.location}: ${contradiction}; not signing it`,
            { path: info.storePath, field: 'CA' },
          );
        }
        // The same object when every key has signed already: nothing is written then.
        return signWith(info, keys);
      },
      { ...(options.attempts !== undefined && { attempts: options.attempts }), ...(signal && { signal }) },
    );
    if (outcome.status === 'missing') return { path: query, status: 'missing' };
    if (outcome.status === 'unchanged') return { path: outcome.info.storePath, status: 'unchanged' };
    return { path: outcome.after.storePath, status: 'signed' };
  };
  async function* queries(): AsyncGenerator<string> {
    const source = paths === 'all' ? store.listNarInfos({ ...(signal && { signal }) }) : paths;
    for await (const query of source) {
      const hashPart = hashPartOf(query);
      const known = isHashPart(hashPart);
      if (shard && shard.count > 1 && (known ? !inShard(hashPart, shard) : shard.index !== 1)) continue;
      if (known && resume?.has(hashPart)) continue;
      yield query;
    }
  }
  await forEachBounded(
    queries(),
    { parallelism: options.parallelism ?? 16, ...(signal && { signal }) },
    async (query) => {
      const hashPart = hashPartOf(query);
      let event: SignEvent;
      try {
        event = { hashPart, ...(await signOne(query)) };
      } catch (e) {
        signal?.throwIfAborted();
        event = { hashPart, path: query, status: 'failed', error: e as Error };
      }
      signal?.throwIfAborted();
      if (resume && isHashPart(hashPart)) {
        const { error, ...rest } = event;
        resume.append({
          ...rest,
          ...(error && {
            error: { code: error instanceof NixcacheError ? error.code : error.name, message: error.message },
          }),
        });
      }
      counts[event.status]++;
      await options.onProgress?.(event);
    },
  );
  return counts;
}
