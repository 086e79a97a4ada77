/**
 * bzip2 codec (nix-formats.md §7.1, extension `.bz2`). Decoding streams through the pure-JS
 * `unbzip2-stream` (one bzip2 block, at most ~900 kB, is held at a time; concatenated streams are
 * accepted). Encoding uses the pure-JS encoder of `compressjs`, which only works on whole buffers, so
 * the input is cut into slices of one block's size, each written as an independent bzip2 stream;
 * the concatenation is a valid multi-stream .bz2 that `bzip2 -d` and Nix (libarchive) read. That
 * encoder is slow (well under 1 MB/s) and runs synchronously per slice.
 */
import type { Codec } from './codec.js';
import { asBuffer, loadOptional } from './codec.js';

type Unbzip2 = typeof import('unbzip2-stream');
type CompressJs = typeof import('compressjs').default;

let decoder: Promise<Unbzip2> | undefined;
let encoder: Promise<CompressJs> | undefined;

function loadDecoder(): Promise<Unbzip2> {
  decoder ??= loadOptional('unbzip2-stream', 'bzip2', async () => {
    const mod = (await import('unbzip2-stream')) as Unbzip2 & { default?: Unbzip2 };
    return mod.default ?? mod;
  });
  return decoder;
}

function loadEncoder(): Promise<CompressJs> {
  encoder ??= loadOptional('compressjs', 'bzip2', async () => (await import('compressjs')).default);
  return encoder;
}

/** Collects bytes into slices of exactly `size` bytes (the last one shorter). */
async function* slices(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(size);
  let fill = 0;
  for await (let chunk of source) {
    while (chunk.length > 0) {
      const n = Math.min(size - fill, chunk.length);
      buf.set(chunk.subarray(0, n), fill);
      fill += n;
      chunk = chunk.subarray(n);
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/** bzip2: unbzip2-stream to decode, compressjs (sliced into independent streams) to encode. */
export const bzip2Codec: Codec = {
  async *compress(source, { level }) {
    const { Bzip2 } = await loadEncoder();
    // One block's worth of input per stream; compressjs keeps its blocks 19 bytes short.
    const encode = (slice: Uint8Array): Uint8Array => {
      const out = Bzip2.compressFile(slice, undefined, level);
      return out instanceof Uint8Array ? out : Uint8Array.from(out);
    };
    let empty = true;
    for await (const slice of slices(source, level * 100_000 - 19)) {
      empty = false;
      yield encode(slice);
    }
    // An empty input still makes a stream (header and end-of-stream marker), as `bzip2` writes.
    if (empty) yield encode(new Uint8Array(0));
  },
  async *decompress(source) {
    const unbzip2 = await loadDecoder();
    const stream = unbzip2();
    const queue: Uint8Array[] = [];
    let failure: { error: unknown } | undefined;
    stream.on('data', (chunk: Uint8Array) => queue.push(chunk));
    stream.on('error', (error: unknown) => {
      failure ??= { error };
    });
    // The decoder is synchronous: each write decodes every block that is complete so far.
    for await (const chunk of source) {
      if (chunk.length === 0) continue;
      stream.write(asBuffer(chunk));
      if (failure) throw failure.error;
      yield* queue.splice(0);
    }
    stream.end();
    if (failure) throw failure.error;
    yield* queue.splice(0);
  },
};
