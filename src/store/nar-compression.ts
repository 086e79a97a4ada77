/**
 * Which decoder a NAR gets (nix-formats.md §7.1). Nix 2.8 decodes every method but `none` and
 * `br` through libarchive, which recognises the format from the data; so a narinfo whose
 * `Compression:` is absent or empty (read as `bzip2`) or wrong still substitutes. nixcache does
 * the same from the NAR file's magic bytes, and reports the discrepancy as a warning.
 */
import { COMPRESSION_MAGIC_LENGTH, detectCompression } from '../compression/registry.js';
import type { NarInfo } from '../narinfo/types.js';

/** A problem with a narinfo that does not stop its NAR from being read (for lint tools). */
export interface NarWarning {
  /**
   * `compression-missing`: no or an empty `Compression:` field (Nix assumes bzip2, then detects);
   * `compression-mismatch`: the field names another method than the data has.
   */
  readonly code: 'compression-missing' | 'compression-mismatch';
  readonly message: string;
  /** The NAR file's URL. */
  readonly url: string;
  readonly path: string;
  /** The method the narinfo names (`bzip2` when it names none). */
  readonly declared: string;
  /** The method found in the data; undefined when unrecognised. */
  readonly detected?: string;
}

/** Reads at least `n` bytes (fewer at the end) and gives them back with the whole stream. */
export async function peek(
  source: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; stream: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const buffered: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    buffered.push(next.value);
    have += next.value.length;
  }
  const head = new Uint8Array(Math.min(n, have));
  let at = 0;
  for (const b of buffered) {
    if (at >= head.length) break;
    const part = b.subarray(0, head.length - at);
    head.set(part, at);
    at += part.length;
  }
  async function* stream(): AsyncGenerator<Uint8Array> {
    try {
      yield* buffered;
      if (done) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      if (!done) await iterator.return?.();
    }
  }
  return { head, stream: stream() };
}

/** The number of leading bytes {@link narCompression} needs. */
export const NAR_PEEK_BYTES = COMPRESSION_MAGIC_LENGTH;

/**
 * The method to decode a NAR with, given its narinfo and the NAR file's first bytes, and the
 * warning to report, if any. `none` and `br` are taken as declared (Nix does not detect them);
 * otherwise the magic bytes win, as in Nix.
 */
export function narCompression(
  info: NarInfo,
  head: Uint8Array,
  url: string,
): { method: string; warning?: NarWarning } {
  const declared = info.compression;
  const missing = info.original !== undefined && !/^Compression:[ \t]*\S/m.test(info.original.text);
  if (!missing && (declared === 'none' || declared === 'br')) return { method: declared };
  const detected = detectCompression(head);
  const method = detected ?? declared;
  const base = { url, path: info.storePath, declared, ...(detected !== undefined && { detected }) };
  const what = detected === undefined ? 'in no format nixcache recognises' : `${detected}`;
  if (missing) {
    return {
      method,
      warning: {
        ...base,
        code: 'compression-missing',
        message: `${url}: the narinfo of ${info.storePath} has no Compression (Nix assumes bzip2 and detects the format); the NAR is ${what}`,
      },
    };
  }
  if (detected !== undefined && detected !== declared) {
    return {
      method,
      warning: {
        ...base,
        code: 'compression-mismatch',
        message: `${url}: the narinfo of ${info.storePath} says Compression: ${declared} but the NAR is ${detected}; decoding it as ${detected}, as Nix does`,
      },
    };
  }
  return { method };
}
