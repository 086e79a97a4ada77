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
  decompress(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array>;
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
 * Pipes `source` through a Node Transform and yields what comes out. Back-pressure holds memory to
 * the streams' high-water marks; a consumer that stops early destroys the pipeline and ends the
 * source iterator.
 */
export async function* throughTransform(
  source: AsyncIterable<Uint8Array>,
  transform: Duplex,
): AsyncGenerator<Uint8Array> {
  const { Readable, pipeline } = await import('node:stream');
  const input = Readable.from(buffers(source), { objectMode: false, highWaterMark: 64 * 1024 });
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
