/**
 * xz codec (nix-formats.md §7.1, extension `.xz`, Nix's default upload method). Both directions use
 * liblzma through the optional native package `node-liblzma`, streaming with bounded memory and
 * accepting concatenated .xz streams. When that package is missing or has no build for this
 * platform, decoding falls back to `xz-decompress` (WebAssembly, xz-embedded, slower); encoding then
 * fails with `MISSING_DEPENDENCY`.
 */
import type { Duplex } from 'node:stream';
import type { Codec } from './codec.js';
import { asBuffer, loadOptional, missingDependency, throughTransform } from './codec.js';
import { xzInWorker } from './xz-worker.js';

type NodeLiblzma = typeof import('node-liblzma');
type XzDecompress = typeof import('xz-decompress');

const NATIVE = 'node-liblzma';
const WASM = 'xz-decompress';
/** Output buffer per liblzma call; 256 KiB measured ~8% faster than 64 KiB, no gain above. */
const CHUNK = 256 * 1024;
/** `compressBytes` encodes inputs up to this size on the calling thread. */
const SYNC_BELOW = 128 * 1024;

let native: Promise<NodeLiblzma> | undefined;
let wasm: Promise<XzDecompress> | undefined;

function loadNative(): Promise<NodeLiblzma> {
  native ??= loadOptional(NATIVE, 'xz', () => import('node-liblzma'));
  return native;
}

function loadWasm(): Promise<XzDecompress> {
  wasm ??= loadOptional(WASM, 'xz', async () => {
    const mod = (await import('xz-decompress')) as XzDecompress & { default?: XzDecompress };
    return mod.default ?? mod;
  });
  return wasm;
}

let crcTable: Uint32Array | undefined;

function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of bytes) crc = crcTable[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** How much of the input's end we keep to find the last stream footer behind stream padding. */
const TAIL = 4096;

/**
 * Neither decoder reports input that stops early (they simply end), so the input must end with an
 * intact xz stream footer (12 bytes: CRC32, backward size, flags, "YZ"), optionally followed by
 * stream padding (zero bytes in groups of four). A cut anywhere else, including inside a
 * footer, fails this check.
 */
function checkEnd(tail: Uint8Array): void {
  let end = tail.length;
  while (
    end >= 4 &&
    tail[end - 1] === 0 &&
    tail[end - 2] === 0 &&
    tail[end - 3] === 0 &&
    tail[end - 4] === 0
  ) {
    end -= 4;
  }
  const footer = tail.subarray(Math.max(0, end - 12), end);
  const ok =
    footer.length === 12 &&
    footer[10] === 0x59 &&
    footer[11] === 0x5a &&
    new DataView(footer.buffer, footer.byteOffset, 12).getUint32(0, true) === crc32(footer.subarray(4, 10));
  if (!ok) throw new Error('input ends before the end of the xz stream (truncated, or not xz)');
}

async function* keepTail(
  source: AsyncIterable<Uint8Array>,
  tail: { bytes: Uint8Array },
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (chunk.length >= TAIL) {
      tail.bytes = chunk.slice(chunk.length - TAIL);
    } else if (chunk.length > 0) {
      const joined = new Uint8Array(Math.min(TAIL, tail.bytes.length + chunk.length));
      const keep = joined.length - chunk.length;
      joined.set(tail.bytes.subarray(tail.bytes.length - keep), 0);
      joined.set(chunk, keep);
      tail.bytes = joined;
    }
    yield chunk;
  }
}

async function* checked(
  source: AsyncIterable<Uint8Array>,
  decode: (input: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const tail = { bytes: new Uint8Array(0) };
  yield* decode(keepTail(source, tail));
  checkEnd(tail.bytes);
}

/** Decodes with the WebAssembly decoder; exported for tests and benchmarks of the fallback path. */
export function decompressXzWasm(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  return checked(source, wasmDecode);
}

async function* wasmDecode(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const { XzReadableStream } = await loadWasm();
  const iterator = source[Symbol.asyncIterator]();
  const input = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
  const reader = new XzReadableStream(input).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Decodes with liblzma; exported for tests and benchmarks. */
export function decompressXzNative(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  return checked(source, nativeDecode);
}

async function* nativeDecode(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const lzma = await loadNative();
  yield* throughTransform(source, lzma.createUnxz({ chunkSize: CHUNK }) as unknown as Duplex);
}

/** xz: liblzma (node-liblzma), with a WebAssembly decoder as the fallback. */
export const xzCodec: Codec = {
  async *compress(source, { level, threads }) {
    let lzma: NodeLiblzma;
    try {
      lzma = await loadNative();
    } catch (cause) {
      throw missingDependency(NATIVE, 'xz', cause);
    }
    const encoder = lzma.createXz({ preset: level, check: lzma.check.CRC64, threads, chunkSize: CHUNK });
    yield* throughTransform(source, encoder as unknown as Duplex);
  },
  async compressBytes(input, { level, threads }) {
    let lzma: NodeLiblzma;
    try {
      lzma = await loadNative();
    } catch (cause) {
      throw missingDependency(NATIVE, 'xz', cause);
    }
    const options = { preset: level, check: lzma.check.CRC64, threads };
    // Small inputs go to one worker thread running liblzma's one-shot encoder, one at a time:
    // the thread-pool stream costs more than the encoding (measured on 600 small paths: a third
    // more CPU), and one encoder at a time keeps liblzma's tables in one reused heap block; off
    // the calling thread, compression overlaps the uploads and the next NAR's dump (see
    // xz-worker.ts). NIXCACHE_XZ_INLINE=1 encodes them on the calling thread instead (as before;
    // for comparisons), as do multi-threaded encodes. Larger inputs go to the thread pool (xz -4
    // runs at a few MB/s).
    if (input.length <= SYNC_BELOW) {
      if (threads !== 1 || process.env.NIXCACHE_XZ_INLINE === '1')
        return lzma.xzSync(asBuffer(input), options);
      return xzInWorker(input, level);
    }
    return lzma.xzAsync(asBuffer(input), { ...options, chunkSize: Math.min(CHUNK, input.length + 1024) });
  },
  async *decompress(source) {
    let useNative = true;
    try {
      await loadNative();
    } catch {
      useNative = false;
      try {
        await loadWasm();
      } catch (cause) {
        throw missingDependency(`${NATIVE}' or '${WASM}`, 'xz', cause);
      }
    }
    yield* useNative ? decompressXzNative(source) : decompressXzWasm(source);
  },
};
