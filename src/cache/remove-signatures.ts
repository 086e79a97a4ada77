/**
 * `removeSignatures`: the second half of a key rotation (nix-formats.md §5.5). Once every narinfo
 * carries the new key's signature (`addSignatures`) and clients trust the new public key, the
 * retired key's signatures are removed. Each narinfo is rewritten with the same conditional
 * read-modify-write as signing (`rewriteNarInfo`), so a signature another writer adds meanwhile
 * is kept; and a narinfo is never left without a signature that a trusted key accepts, unless
 * the caller forces it.
 */
import { NixcacheError } from '../errors.js';
import type { NarInfo } from '../narinfo/types.js';
import { makeKeyring, type TrustedKeys, verifyNarInfo } from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { forEachBounded } from './pipeline.js';
import { rewriteNarInfo } from './rewrite.js';

export interface RemoveSignaturesOptions {
  /**
   * Keys clients trust after the rotation: a narinfo is left alone (reported as refused) when no
   * signature by one of them would remain. Required unless `force`.
   */
  readonly trustedKeys?: TrustedKeys;
  /** Remove the signatures even when the narinfo is left with no trusted one. */
  readonly force?: boolean;
  /** Narinfos rewritten at once (default 8). */
  readonly parallelism?: number;
  /** Read-modify-write attempts per narinfo when another writer races us (default 10). */
  readonly attempts?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: {
    path: string;
    status: 'removed' | 'unchanged' | 'missing' | 'refused' | 'failed';
    error?: Error;
  }) => void;
}

export interface RemoveSignaturesResult {
  /** Narinfos that had signatures by the named keys and no longer have. */
  readonly removed: readonly string[];
  /** Narinfos with no signature by the named keys. */
  readonly unchanged: readonly string[];
  readonly missing: readonly string[];
  /** Left as they were: removing would leave them with no signature a trusted key accepts. */
  readonly refused: readonly { readonly path: string; readonly reason: string }[];
  readonly failed: readonly { readonly path: string; readonly error: Error }[];
}

/** Thrown inside the edit to leave one narinfo alone. */
class Refusal extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/**
 * The narinfo without the signatures of `keyNames` (`info` itself when it has none of them).
 *
 * @example withoutSignatures(info, ['old-cache-1']).sigs
 */
export function withoutSignatures(info: NarInfo, keyNames: ReadonlySet<string>): NarInfo {
  const kept = info.sigs.filter((s) => !keyNames.has(s.slice(0, Math.max(0, s.indexOf(':')))));
  return kept.length === info.sigs.length ? info : { ...info, sigs: kept };
}

/**
 * Removes the signatures made by the keys named `keyNames` from the narinfos of `paths` (or of
 * every narinfo with `'all'`), streaming the listing with bounded memory.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when neither `trustedKeys` nor `force` is given, or no key
 *   name; UNSUPPORTED when listing an HTTP cache for `'all'`; ABORTED.
 * @example await removeSignatures(store, 'all', ['old-cache-1'], { trustedKeys: ['new-cache-1:…'] })
 */
export async function removeSignatures(
  store: BinaryCacheStore,
  paths: readonly string[] | 'all',
  keyNames: readonly string[],
  options: RemoveSignaturesOptions = {},
): Promise<RemoveSignaturesResult> {
  if (keyNames.length === 0) throw new NixcacheError('BAD_ARGUMENT', 'no key name to remove', {});
  if (options.trustedKeys === undefined && !options.force) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      'removing signatures needs the keys that stay trusted (or force), so that no narinfo is left unsigned',
      {},
    );
  }
  const names = new Set(keyNames);
  const ring = options.trustedKeys === undefined ? undefined : makeKeyring(options.trustedKeys);
  const signal = options.signal;
  const result = {
    removed: [] as string[],
    unchanged: [] as string[],
    missing: [] as string[],
    refused: [] as { path: string; reason: string }[],
    failed: [] as { path: string; error: Error }[],
  };
  const edit = (info: NarInfo): NarInfo => {
    const next = withoutSignatures(info, names);
    if (next === info || options.force || !ring) return next;
    const verdict = verifyNarInfo(next, ring);
    if (!verdict.trusted) {
      const left = next.sigs.map((s) => s.slice(0, s.indexOf(':'))).join(', ') || 'none';
      throw new Refusal(
        `no signature by a trusted key would remain (signatures left: ${left}); sign it with the new key first, or use force`,
        info.storePath,
      );
    }
    return next;
  };
  const removeOne = async (query: string): Promise<void> => {
    try {
      const outcome = await rewriteNarInfo(store, query, edit, {
        ...(options.attempts !== undefined && { attempts: options.attempts }),
        ...(signal && { signal }),
      });
      if (outcome.status === 'missing') {
        result.missing.push(query);
        options.onProgress?.({ path: query, status: 'missing' });
      } else if (outcome.status === 'unchanged') {
        result.unchanged.push(outcome.info.storePath);
        options.onProgress?.({ path: outcome.info.storePath, status: 'unchanged' });
      } else {
        result.removed.push(outcome.after.storePath);
        options.onProgress?.({ path: outcome.after.storePath, status: 'removed' });
      }
    } catch (e) {
      if (e instanceof Refusal) {
        result.refused.push({ path: e.path, reason: e.message });
        options.onProgress?.({ path: e.path, status: 'refused' });
        return;
      }
      if (signal?.aborted) throw e;
      result.failed.push({ path: query, error: e as Error });
      options.onProgress?.({ path: query, status: 'failed', error: e as Error });
    }
  };
  const source = paths === 'all' ? store.listNarInfos({ ...(signal && { signal }) }) : paths;
  await forEachBounded(
    source,
    { parallelism: options.parallelism ?? 8, ...(signal && { signal }) },
    removeOne,
  );
  return result;
}
