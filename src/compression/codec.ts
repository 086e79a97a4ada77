/**
 * What every codec file implements, and the plumbing they share: lazy loading of optional npm
 * packages (a missing one becomes `MISSING_DEPENDENCY`) and running a Node `Transform` over an
 * async iterable with back-pressure. Internal to `nixcache/compression`; nix-formats.md §7.1.
 */
import type { Duplex } from 'node:stream';
import { NixcacheError } from '../errors.js';

/** One codec: streaming transforms over already-normalised sources. Errors are mapped by the caller. */
export interface Codec {
  compress(source: AsyncIterable<Uint8Array>, options: CodecCompressOptions): AsyncIterable<Uint8Array>;
  /**
   * Decodes incrementally: the output comes in chunks of at most a few hundred KiB, produced only
   * as the consumer pulls (a codec that must decode a whole block at once keeps to one block), and
   * a codec stops on its own once it has produced more than `maxOutputBytes`.
   */
  decompress(source: AsyncIterable<Uint8Array>, options: CodecDecompressOptions): AsyncIterable<Uint8Array>;
  /**
   * Compresses a whole (small) input at once, with less per-call machinery than a stream: the
   * same format, bytes a decoder reads like the streamed ones. Optional; `compressBytes` falls
   * back to `compress`.
   */
  compressBytes?(input: Uint8Array, options: CodecCompressOptions): Promise<Uint8Array>;
}

/** Options a decoder receives. */
export interface CodecDecompressOptions {
  /** Stop (throw {@link OutputLimitExceeded}) once more than this many bytes were produced. */
  readonly maxOutputBytes: number;
}

/**
 * Thrown inside a codec that went past `maxOutputBytes`; `decompress` turns it into a
 * `TOO_LARGE` NixcacheError naming the method and the limit.
 */
export class OutputLimitExceeded extends Error {
  constructor(readonly limit: number) {
    super(`decompressed output exceeds ${limit} bytes`);
    this.name = 'OutputLimitExceeded';
  }
}

/** Options a codec receives, already validated. */
export interface CodecCompressOptions {
  readonly level: number;
  readonly threads: number;
}

/**
 * Awaits a dynamic import of an optional package; any failure to load it (not installed, no native
 * build for this platform) becomes a `MISSING_DEPENDENCY` error naming the package.
 */
export async function loadOptional<T>(pkg: string, method: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    throw missingDependency(pkg, method, cause);
  }
}

/** The error for a codec whose npm package is absent or does not load. */
export function missingDependency(pkg: string, method: string, cause?: unknown): NixcacheError {
  const why = cause instanceof Error ? ` (${cause.message.split('\n')[0]})` : '';
  return new NixcacheError(
    'MISSING_DEPENDENCY',
    `${method} compression needs the npm package '${pkg}'; install it with \`npm install ${pkg}\`${why}`,
    { package: pkg, method },
    cause === undefined ? undefined : { cause },
  );
}

/** Views a Uint8Array as a Buffer without copying (some native transforms insist on Buffer). */
export function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

async function* buffers(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  for await (const chunk of source) if (chunk.length > 0) yield asBuffer(chunk);
}

/**
 * Cuts chunks into pieces of at most `size` bytes (views, no copies). A decoder fed small pieces
 * cannot produce a huge burst of output from one write, whatever the compression ratio.
 */
export async function* sliced(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    for (let at = 0; at < chunk.length; at += size) yield asBuffer(chunk.subarray(at, at + size));
  }
}

/**
 * Pipes `source` through a Node Transform and yields what comes out. Back-pressure holds memory to
 * the streams' high-water marks (node:zlib and liblzma stop producing while the output is not
 * read); `inputSlice` feeds the transform pieces of at most that size; a consumer that stops early destroys the pipeline and ends the
 * source iterator.
 */
export async function* throughTransform(
  source: AsyncIterable<Uint8Array>,
  transform: Duplex,
  inputSlice?: number,
): AsyncGenerator<Uint8Array> {
  const { Readable, pipeline } = await import('node:stream');
  const chunks = inputSlice === undefined ? buffers(source) : sliced(buffers(source), inputSlice);
  const input = Readable.from(chunks, { objectMode: false, highWaterMark: 64 * 1024 });
  const output = pipeline(input, transform, () => {});
  try {
    for await (const chunk of output) yield chunk as Uint8Array;
  } finally {
    // On an early exit, wait until the source iterator has been told to stop.
    if (!input.closed) {
      const closed = new Promise((resolve) => input.once('close', resolve));
      input.destroy();
      await closed;
    }
  }
}
