/**
 * Publishing one path into a binary cache, shared by push and copy (nix-formats.md §7.2): upload
 * the staged NAR (skipped when the content-addressed file is already there) and its `.ls`, then
 * build and sign the narinfo. The caller writes the narinfo last, after its references.
 */

import type { NarInfo } from '../narinfo/types.js';
import type { SecretKey } from '../signing/keys.js';
import { signNarInfo } from '../signing/sign.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { listingKey, narKey } from '../store/layout.js';
import { withRetry } from './retry.js';
import type { StagedNar } from './stage.js';

export interface UploadOptions {
  readonly signal?: AbortSignal;
  /** Called with the number of compressed bytes sent. */
  readonly onBytes?: (bytes: number) => void;
}

/**
 * Uploads a staged NAR (and its listing) and returns the narinfo `URL`.
 *
 * @throws {NixcacheError} NETWORK/IO after retries, ABORTED.
 */
export async function uploadStagedNar(
  store: BinaryCacheStore,
  staged: StagedNar,
  hashPart: string,
  options: UploadOptions = {},
): Promise<string> {
  const compression = store.config.compression;
  const key = narKey(staged.fileHash.digest, compression);
  const signal = options.signal;
  // The key names the compressed bytes, so an object already there is this NAR, unless an
  // interrupted upload left part of it (s3rver keeps a cut-short body; a killed server can too):
  // only an object of exactly FileSize bytes counts.
  const existing = await withRetry(() => store.backend.head(key, { signal }), { signal });
  if (existing?.size !== staged.fileSize) {
    await withRetry(
      () =>
        store.putFile(key, counting(staged.body(), options.onBytes), {
          size: staged.fileSize,
          ...(signal && { signal }),
        }),
      { signal },
    );
  } else {
    options.onBytes?.(staged.fileSize);
  }
  if (staged.listing !== undefined) {
    const listing = new TextEncoder().encode(staged.listing);
    await withRetry(
      () =>
        store.putFile(listingKey(hashPart), listing, {
          compression: store.config.lsCompression,
          ...(signal && { signal }),
        }),
      { signal },
    );
  }
  return key;
}

async function* counting(
  body: AsyncIterable<Uint8Array>,
  onBytes?: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    onBytes?.(chunk.length);
    yield chunk;
  }
}

/** Adds a signature by each key that the info does not carry yet. */
export function signWith(info: NarInfo, keys: readonly SecretKey[]): NarInfo {
  // signNarInfo returns `info` itself when the signature is already there, so an unchanged
  // result is the same object (addSignatures relies on that to skip the write).
  return keys.reduce(signNarInfo, info);
}

/** Writes a narinfo with retries (the last step of publishing a path). */
export async function writeNarInfo(
  store: BinaryCacheStore,
  info: NarInfo,
  signal?: AbortSignal,
): Promise<void> {
  await withRetry(() => store.putNarInfo(info, { ...(signal && { signal }) }), { signal });
}
