/**
 * The few members nixcache uses of two untyped JavaScript packages that the compression codecs load
 * lazily: `xz-decompress` (WebAssembly xz decoder) and `compressjs` (pure-JS bzip2 encoder).
 */
declare module 'xz-decompress' {
  /** A web stream of decoded bytes over a web stream of .xz bytes. */
  export class XzReadableStream extends ReadableStream<Uint8Array> {
    constructor(compressed: ReadableStream<Uint8Array>);
  }
}

declare module 'compressjs' {
  interface Bzip2Api {
    /** Compresses a whole buffer to one bzip2 stream; `blockSizeMultiplier` is 1..9 (×100 kB). */
    compressFile(input: Uint8Array, output?: undefined, blockSizeMultiplier?: number): Uint8Array | number[];
  }
  const compressjs: { readonly Bzip2: Bzip2Api };
  export default compressjs;
}

declare module 'unbzip2-stream/lib/bit_iterator.js' {
  /** Reads `n` bits (MSB first); `null` aligns to the next byte. Counts the bytes it started. */
  export interface BitReader {
    (n: number | null): number;
    bytesRead: number;
  }
  /** A bit reader over buffers handed out one at a time by `nextBuffer`. */
  function bitIterator(nextBuffer: () => Uint8Array): BitReader;
  export = bitIterator;
}

declare module 'unbzip2-stream/lib/bzip2.js' {
  import type { BitReader } from 'unbzip2-stream/lib/bit_iterator.js';
  /** Reads a stream header ("BZh" + level); returns the block size in units of 100 kB. */
  export function header(bits: BitReader): number;
  /**
   * Decodes one block, calling `out` per byte; returns the running stream CRC, or null at the
   * end-of-stream marker (after checking the stream CRC).
   */
  export function decompress(
    bits: BitReader,
    out: (byte: number) => void,
    buf: Int32Array,
    bufsize: number,
    streamCrc: number | null,
  ): number | null;
}
