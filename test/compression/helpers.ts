/**
 * Shared test inputs for the compression tests: deterministic, compressible-but-not-trivial bytes
 * made lazily in chunks, and small stream utilities.
 */
import { collectBytes } from '../../src/internal/iter.js';

/** A fast deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  'nix store path derivation output narinfo signature closure reference hash sha256 xz zstd bzip2'.split(' ');

/** `size` bytes that look like a text-and-binary NAR: words, numbers and some random runs. */
export function sampleBytes(size: number, seed = 1): Uint8Array {
  const rand = prng(seed);
  const out = new Uint8Array(size);
  const enc = new TextEncoder();
  let at = 0;
  while (at < size) {
    const r = rand();
    let piece: Uint8Array;
    if (r < 0.1) {
      piece = new Uint8Array(1 + Math.floor(rand() * 64));
      for (let i = 0; i < piece.length; i++) piece[i] = Math.floor(rand() * 256);
    } else {
      piece = enc.encode(
        `${WORDS[Math.floor(rand() * WORDS.length)]}${r < 0.3 ? Math.floor(rand() * 1e6) : ''} `,
      );
    }
    const n = Math.min(piece.length, size - at);
    out.set(piece.subarray(0, n), at);
    at += n;
  }
  return out;
}

/** A lazily generated stream of `total` bytes in `chunk`-sized pieces (each a fresh buffer). */
export async function* lazyStream(total: number, chunk = 1 << 20, seed = 7): AsyncGenerator<Uint8Array> {
  const base = sampleBytes(chunk, seed);
  let sent = 0;
  let n = 0;
  while (sent < total) {
    const size = Math.min(chunk, total - sent);
    const piece = base.slice(0, size);
    // Vary each chunk a little so that long-range matching does not make it trivial.
    const view = new DataView(piece.buffer);
    for (let i = 0; i + 4 <= size; i += 4096) view.setUint32(i, n * 2654435761 + i);
    n++;
    sent += size;
    yield piece;
  }
}

/** Splits bytes into chunks at the given cut points (sorted, deduplicated, in range). */
export function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(0, c), bytes.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

export { collectBytes };

/** Byte equality with a readable failure. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}
