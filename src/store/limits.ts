/**
 * Resource limits of the store layer (issue 10): how large a "small" object (narinfo, `.ls`
 * listing, `nix-cache-info`, log) may be when it is read whole into memory, and the helpers that
 * enforce it on the raw bytes and on the bytes after any Content-Encoding is undone.
 * NARs are never read whole: they stream, bounded by their narinfo's NarSize.
 */
import { decompress } from '../compression/compress.js';
import { NixcacheError, StoreError } from '../errors.js';
import { concatBytes } from '../internal/bytes.js';

/**
 * Most bytes a small object may have, both as stored and once decoded: 8 MiB. Real narinfos are
 * under 10 KiB and `.ls` listings of even very large store paths a few MiB; a server that sends
 * more (an endless body, a gzip bomb) fails with `TOO_LARGE` instead of filling memory.
 * Override per store with `openStore(url, { maxSmallObjectBytes })`.
 */
export const DEFAULT_MAX_SMALL_OBJECT_BYTES = 8 * 1024 * 1024;

/** The error for a small object over the limit; names the URL and the limit. */
export function tooLarge(
  url: string,
  limit: number,
  what = 'object',
  actual?: number,
  hint = '; raise maxSmallObjectBytes if it is genuine',
): NixcacheError {
  return new StoreError(
    'TOO_LARGE',
    `${url}: ${what} is larger than the limit of ${limit} bytes${actual === undefined ? '' : ` (${actual} bytes)`}${hint}`,
    {
      url,
      limit,
      expected: `at most ${limit} bytes`,
      ...(actual !== undefined && { actual: String(actual) }),
    },
  );
}

/**
 * Reads a whole stream, failing with `TOO_LARGE` (and ending the stream, which closes its
 * connection or file) as soon as it has more than `limit` bytes.
 *
 * @throws {NixcacheError} TOO_LARGE naming `url`; errors of the source unchanged.
 */
export async function collectLimited(
  source: AsyncIterable<Uint8Array>,
  limit: number,
  url: string,
  what?: string,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > limit) throw tooLarge(url, limit, what);
    parts.push(chunk);
  }
  if (parts.length === 1) {
    const only = parts[0]!;
    // A plain Uint8Array view (no copy), even over a Node Buffer.
    return new Uint8Array(only.buffer, only.byteOffset, only.byteLength);
  }
  return concatBytes(parts);
}

/**
 * Undoes a Content-Encoding of a small object with the decoded size bounded by `limit`.
 *
 * @throws {NixcacheError} TOO_LARGE naming `url` when the decoded bytes exceed `limit`;
 *   COMPRESSION for corrupt data; BAD_ARGUMENT/UNSUPPORTED for an unknown encoding.
 */
export async function decodeLimited(
  encoding: string,
  bytes: Uint8Array,
  limit: number,
  url: string,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  try {
    return await collectLimited(
      decompress(encoding, bytes, { maxOutputBytes: limit, ...(signal && { signal }) }),
      limit,
      url,
    );
  } catch (e) {
    if (e instanceof NixcacheError && e.code === 'TOO_LARGE' && e.data.url === undefined) {
      throw tooLarge(url, limit, `object decoded from Content-Encoding ${encoding}`);
    }
    throw e;
  }
}
