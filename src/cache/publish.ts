/**
 * Publishing one path into a binary cache, shared by push and copy (nix-formats.md §7.2): upload
 * the staged NAR (skipped when the content-addressed file is already there) and its `.ls`, then
 * build and sign the narinfo. The caller writes the narinfo last, after its references; a
 * forced re-publish keeps the signatures others added for the same NAR.
 */

import { NixcacheError } from '../errors.js';
import { narInfoFingerprint } from '../narinfo/fingerprint.js';
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
  // A NAR held in memory is small: sending it again costs about what asking for it does.
  const bytes = staged.bytes();
  const existing =
    bytes === undefined ? await withRetry(() => store.backend.head(key, { signal }), { signal }) : undefined;
  if (existing?.size !== staged.fileSize) {
    await withRetry(
      () =>
        store.putFile(key, bytes ?? counting(staged.body(), options.onBytes), {
          size: staged.fileSize,
          ...(signal && { signal }),
        }),
      { signal },
    );
    if (bytes) options.onBytes?.(bytes.length);
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

/**
 * The signatures to keep from the narinfo a cache already has for the path: all of them when it
 * signs the same fingerprint (path, NarHash, NarSize, references), none otherwise (they are
 * about other content and would not verify).
 */
export function mergeSignatures(info: NarInfo, existing: NarInfo): NarInfo {
  let same: boolean;
  try {
    same = narInfoFingerprint(existing) === narInfoFingerprint(info);
  } catch {
    same = false;
  }
  if (!same) return info;
  const extra = info.sigs.filter((s) => !existing.sigs.includes(s));
  const sigs = [...existing.sigs, ...extra];
  return sigs.length === info.sigs.length && sigs.every((s, i) => s === info.sigs[i])
    ? info
    : { ...info, sigs };
}

/** The narinfo the cache has now, or undefined when it has none or one that does not parse. */
async function currentNarInfo(
  store: BinaryCacheStore,
  storePath: string,
  signal?: AbortSignal,
): Promise<{ info: NarInfo; etag?: string } | undefined> {
  try {
    return await withRetry(() => store.getNarInfoVersioned(storePath, { ...(signal && { signal }) }), {
      signal,
    });
  } catch (e) {
    // A garbage narinfo is what --force repairs: nothing to keep from it.
    if (e instanceof NixcacheError && ['BAD_NARINFO', 'INTEGRITY', 'BAD_STORE_PATH'].includes(e.code))
      return undefined;
    throw e;
  }
}

/**
 * Writes a narinfo with retries (the last step of publishing a path). With `keepSignatures`
 * (a forced re-publish), the signatures of the narinfo already there are kept when it is about
 * the same NAR (`mergeSignatures`), with a conditional write so that a concurrent signer's
 * signature is not lost either.
 */
export async function writeNarInfo(
  store: BinaryCacheStore,
  info: NarInfo,
  signal?: AbortSignal,
  options: { keepSignatures?: boolean } = {},
): Promise<void> {
  if (!options.keepSignatures) {
    await withRetry(() => store.putNarInfo(info, { ...(signal && { signal }) }), { signal });
    return;
  }
  for (let attempt = 0; ; attempt++) {
    const current = await currentNarInfo(store, info.storePath, signal);
    const merged = current ? mergeSignatures(info, current.info) : info;
    try {
      await withRetry(
        () =>
          store.putNarInfo(merged, {
            ...(signal && { signal }),
            ...(current?.etag !== undefined && { ifMatch: current.etag }),
          }),
        { signal },
      );
      return;
    } catch (e) {
      if (!(e instanceof NixcacheError && e.code === 'CONFLICT') || attempt >= 9) throw e;
    }
  }
}
