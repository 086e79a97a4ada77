/**
 * `copyPaths`: copies closures between any two binary caches, like `nix copy --from A --to B`:
 * every NAR is verified on the way (hashes, sizes, optionally trusted signatures), recompressed
 * with the target's compression, optionally re-signed, and published references first.
 */
import { NixcacheError } from '../errors.js';
import { hashEquals } from '../hash/hash.js';
import type { NarInfo } from '../narinfo/types.js';
import type { SecretKey } from '../signing/keys.js';
import { makeKeyring, type TrustedKeys, verifyNarInfo } from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { formatStorePath, type StorePath } from '../store-path/store-path.js';
import { type GraphResult, type PreparedPath, publishGraph } from './graph.js';
import { signWith, uploadStagedNar } from './publish.js';
import { withRetry } from './retry.js';
import { stageNar } from './stage.js';

export interface CopyOptions {
  /** Copy the closure (default true). */
  readonly closure?: boolean;
  /** Refuse paths that no key here signed (and that are not content-addressed). */
  readonly trustedKeys?: TrustedKeys;
  /** Add signatures by these keys. */
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
export async function copyPaths(
  from: BinaryCacheStore,
  to: BinaryCacheStore,
  paths: readonly string[],
  options: CopyOptions = {},
): Promise<GraphResult> {
  if (from.storeDir !== to.storeDir) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `cannot copy between store directories ${from.storeDir} and ${to.storeDir}`,
    );
  }
  const ring = options.trustedKeys ? makeKeyring(options.trustedKeys) : undefined;
  const signal = options.signal;
  const prepare = async (sp: StorePath): Promise<PreparedPath> => {
    const full = formatStorePath(sp);
    const info = await withRetry(() => from.getNarInfo(full, { ...(signal && { signal }) }), { signal });
    if (!info) throw new NixcacheError('NOT_FOUND', `${full} is not in ${from.location}`, { path: full });
    if (ring) {
      const trust = verifyNarInfo(info, ring);
      if (!trust.trusted) {
        throw new NixcacheError('INTEGRITY', `${full} in ${from.location} is not signed by a trusted key`, {
          path: full,
        });
      }
    }
    // getNar verifies FileHash, NarSize and NarHash by the end of the stream, before staging ends.
    const staged = await stageNar(from.getNar(info, { ...(signal && { signal }) }), {
      compression: to.config.compression,
      ...(to.config.compressionLevel !== undefined && { compressionLevel: to.config.compressionLevel }),
      listing: to.config.writeNarListing,
      ...(signal && { signal }),
    });
    try {
      if (!hashEquals(staged.narHash, info.narHash)) {
        throw new NixcacheError('INTEGRITY', `${full}: NAR hash changed while copying`, { path: full });
      }
      const url = await uploadStagedNar(to, staged, sp.hash, { ...(signal && { signal }) });
      const { original: _, ...fields } = info;
      const copied: NarInfo = {
        ...fields,
        url,
        compression: to.config.compression,
        fileHash: staged.fileHash,
        fileSize: staged.fileSize,
      };
      return { info: signWith(copied, options.secretKeys ?? []), references: info.references };
    } finally {
      await staged.dispose();
    }
  };
  return publishGraph(to, paths, prepare, {
    ...(options.closure !== undefined && { closure: options.closure }),
    ...(options.parallelism !== undefined && { parallelism: options.parallelism }),
    ...(options.force !== undefined && { force: options.force }),
    ...(signal && { signal }),
    onSkip: (path) => options.onProgress?.({ type: 'skip', path }),
    onDone: (path) => options.onProgress?.({ type: 'done', path }),
    onFailed: (path, error) => options.onProgress?.({ type: 'failed', path, error }),
  });
}
