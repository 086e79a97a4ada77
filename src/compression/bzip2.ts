/**
 * bzip2 codec (nix-formats.md §7.1, extension `.bz2`). Decoding uses the block decoder of the
 * pure-JS `unbzip2-stream` (its `lib/bzip2.js`), driven here one block at a time and only when the
 * consumer asks for more output; concatenated streams are accepted. A block is decoded in one
 * synchronous call, so at most one block's output is held (up to ~46 MB for a block of one
 * repeated byte; it stops early past `maxOutputBytes`). unbzip2-stream's own stream decoded every
 * buffered block per write and collected output as a JS array of numbers: 13 KB of bzip2 zeros
 * took 2.5 GB. Encoding uses the pure-JS encoder of `compressjs`, which only works on whole buffers, so
 * the input is cut into slices of one block's size, each written as an independent bzip2 stream;
 * the concatenation is a valid multi-stream .bz2 that `bzip2 -d` and Nix (libarchive) read. That
 * encoder is slow (well under 1 MB/s) and runs synchronously per slice.
 */
import type { Codec } from './codec.js';
import { loadOptional, OutputLimitExceeded } from './codec.js';

type CompressJs = typeof import('compressjs').default;
type BitReader = import('unbzip2-stream/lib/bit_iterator.js').BitReader;
interface BlockDecoder {
  bz2: typeof import('unbzip2-stream/lib/bzip2.js');
  bitIterator: typeof import('unbzip2-stream/lib/bit_iterator.js');
}

let decoder: Promise<BlockDecoder> | undefined;
let encoder: Promise<CompressJs> | undefined;

function loadDecoder(): Promise<BlockDecoder> {
  decoder ??= loadOptional('unbzip2-stream', 'bzip2', async () => {
    const [bz2, bits] = await Promise.all([
      import('unbzip2-stream/lib/bzip2.js'),
      import('unbzip2-stream/lib/bit_iterator.js'),
    ]);
    return {
      bz2: (bz2 as { default?: BlockDecoder['bz2'] }).default ?? bz2,
      bitIterator: (bits as { default?: BlockDecoder['bitIterator'] }).default ?? bits,
    } as BlockDecoder;
  });
  return decoder;
}

/** Output piece size of the bzip2 decoder. */
const PIECE = 256 * 1024;

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
  async *decompress(source, { maxOutputBytes }) {
    const { bz2, bitIterator } = await loadDecoder();
    const queue: Uint8Array[] = [];
    let buffered = 0;
    let bits: BitReader | undefined;
    const nextBuffer = (): Uint8Array => {
      const next = queue.shift();
      if (next === undefined) throw new Error('input ends inside a bzip2 block (truncated)');
      return next;
    };
    // Decoder state across blocks: block size of the current stream (0 = expect a stream header).
    let blockSize = 0;
    let streamCrc: number | null = null;
    let work: Int32Array | undefined;
    // Output of the block being decoded, in fixed pieces.
    let produced = 0;
    let piece = new Uint8Array(PIECE);
    let fill = 0;
    let done: Uint8Array[] = [];
    const put = (byte: number): void => {
      if (fill === PIECE) {
        done.push(piece);
        piece = new Uint8Array(PIECE);
        fill = 0;
      }
      piece[fill++] = byte;
      if (++produced > maxOutputBytes) throw new OutputLimitExceeded(maxOutputBytes);
    };
    /** Decodes one header or block; returns the output it made. */
    const step = (reader: BitReader): Uint8Array[] => {
      if (blockSize === 0) {
        blockSize = bz2.header(reader);
        streamCrc = 0;
        return [];
      }
      const size = 100_000 * blockSize;
      if (work === undefined || work.length < size) work = new Int32Array(size);
      streamCrc = bz2.decompress(reader, put, work, size, streamCrc);
      if (streamCrc === null) blockSize = 0;
      const out = done;
      if (fill > 0) out.push(piece.slice(0, fill));
      done = [];
      fill = 0;
      return out;
    };
    const unread = (): number => buffered - (bits?.bytesRead ?? 0);
    for await (const chunk of source) {
      if (chunk.length === 0) continue;
      queue.push(chunk);
      buffered += chunk.length;
      bits ??= bitIterator(nextBuffer);
      // Decode only with a whole block buffered (its compressed size is below 25 kB + 100 kB × size).
      while (unread() + 1 >= (25_000 + 100_000 * blockSize || 4)) yield* step(bits);
    }
    while (bits && unread() > 0) yield* step(bits);
    if (streamCrc !== null) throw new Error('input ends before the end of the bzip2 stream (truncated)');
  },
};
