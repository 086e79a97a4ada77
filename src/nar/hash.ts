/**
 * NarHash and NarSize of a NAR stream (nix-formats.md §6.1, §4.2): sha256 over every byte and
 * the byte count, computed in the same pass that validates the archive structure (§6.3).
 */
import { NixcacheError } from '../errors.js';
import type { NixHash } from '../hash/hash.js';
import { createHasher } from '../hash/hasher.js';
import { type ByteSource, toAsyncIterable } from '../internal/iter.js';
import { NarDecoder, type NarVisitor, type ReadNarOptions } from './read.js';

/** What `hashNar` computes: the values a narinfo's `NarHash` and `NarSize` must carry. */
export interface NarHashResult {
  readonly narHash: NixHash;
  readonly narSize: number;
}

/** Options of `hashNar`. */
export interface HashNarOptions extends ReadNarOptions {
  /** Also report nodes and contents to this visitor while hashing (one pass for both). */
  readonly visitor?: NarVisitor;
}

/**
 * Hashes a NAR stream with sha256 while checking that it is a valid archive. Chunks go to the
 * hasher as they pass through the decoder; contents are never buffered or copied.
 *
 * @throws {NixcacheError} BAD_NAR when the stream is not a valid NAR (including truncation and
 *   trailing bytes; with `allowTrailingBytes` those are neither hashed nor counted). ABORTED
 *   when `signal` fires.
 * @example
 * const { narHash, narSize } = await hashNar(stream);
 * formatHash(narHash) // 'sha256:0h40zg6...'
 */
export async function hashNar(source: ByteSource, options: HashNarOptions = {}): Promise<NarHashResult> {
  const hasher = createHasher('sha256');
  const decoder = new NarDecoder(options.visitor, options);
  const { signal } = options;
  const it = toAsyncIterable(source)[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (signal?.aborted)
        throw new NixcacheError('ABORTED', 'NAR hashing aborted', {}, { cause: signal.reason });
      const r = await it.next();
      if (r.done) break;
      const chunk = r.value;
      const before = decoder.offset;
      decoder.write(chunk);
      const used = decoder.offset - before;
      hasher.update(used === chunk.length ? chunk : chunk.subarray(0, used));
      if (decoder.done && options.allowTrailingBytes) {
        await it.return?.();
        break;
      }
    }
  } catch (e) {
    await it.return?.()?.catch(() => {});
    throw e;
  }
  decoder.end();
  return { narHash: { algorithm: 'sha256', digest: hasher.digest() }, narSize: decoder.offset };
}
