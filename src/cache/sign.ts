/**
 * `addSignatures`: the `nix store sign --store <cache>` equivalent (nix-formats.md §5.5). Each
 * narinfo is read, signed, and written back only if it is unchanged since it was read (ETag
 * conditional write), retrying on a conflict, so two signers never lose each other's signature.
 * The read-modify-write itself is `rewriteNarInfo` (rewrite.ts), shared with `removeSignatures`.
 * Like `nix store sign`, it signs what the cache holds without downloading the NARs (it is for
 * the owner's own cache), but never a narinfo whose CA claim contradicts its NarHash.
 */
import { NixcacheError } from '../errors.js';
import type { SecretKey } from '../signing/keys.js';
import { contentAddressContradiction } from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { createLimit } from './limit.js';
import { signWith } from './publish.js';
import { rewriteNarInfo } from './rewrite.js';

export interface SignOptions {
  readonly parallelism?: number;
  /** Read-modify-write attempts per narinfo when another writer races us (default 10). */
  readonly attempts?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: {
    path: string;
    status: 'signed' | 'unchanged' | 'missing' | 'failed';
    error?: Error;
  }) => void;
}

export interface SignResult {
  readonly signed: readonly string[];
  readonly unchanged: readonly string[];
  readonly missing: readonly string[];
  readonly failed: readonly { readonly path: string; readonly error: Error }[];
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
  const limit = createLimit(options.parallelism ?? 8);
  const result = {
    signed: [] as string[],
    unchanged: [] as string[],
    missing: [] as string[],
    failed: [] as { path: string; error: Error }[],
  };
  const signOne = async (query: string): Promise<void> => {
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
    if (outcome.status === 'missing') {
      result.missing.push(query);
      options.onProgress?.({ path: query, status: 'missing' });
    } else if (outcome.status === 'unchanged') {
      result.unchanged.push(outcome.info.storePath);
      options.onProgress?.({ path: outcome.info.storePath, status: 'unchanged' });
    } else {
      result.signed.push(outcome.after.storePath);
      options.onProgress?.({ path: outcome.after.storePath, status: 'signed' });
    }
  };
  const pending: Promise<void>[] = [];
  const run = (query: string) =>
    pending.push(
      limit(() =>
        signOne(query).catch((error: Error) => {
          result.failed.push({ path: query, error });
          options.onProgress?.({ path: query, status: 'failed', error });
        }),
      ),
    );
  if (paths === 'all') for await (const hash of store.listNarInfos({ ...(signal && { signal }) })) run(hash);
  else for (const p of paths) run(p);
  await Promise.all(pending);
  return result;
}
