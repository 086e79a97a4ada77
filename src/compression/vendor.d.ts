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
