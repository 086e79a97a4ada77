/**
 * zstd codec (nix-formats.md §7.1, extension `.zst`). Decoding uses the optional native package
 * `zstd-napi`, else the pure-JS `fzstd` (no checksum verification). `node:zlib`'s zstd decoder is
 * deliberately not used: on Node 24.21 it stops after the first frame and silently drops the rest of
 * a multi-frame input, which is valid zstd. Encoding uses `zstd-napi`, else `node:zlib`'s zstd
 * (Node ≥ 22.15 / 23.8). All paths stream with bounded memory; frames written here carry the
 * content checksum, like the `zstd` CLI.
 */
import type { Transform } from 'node:stream';
import type { Codec, CodecDecompressOptions } from './codec.js';
import { loadOptional, missingDependency, OutputLimitExceeded, sliced, throughTransform } from './codec.js';

type ZstdNapi = typeof import('zstd-napi');
/** The native context of zstd-napi (`ZSTD_DCtx`), driven directly so that decoding is pull-based. */
interface NapiDCtx {
  /** `ZSTD_decompressStream`: [hint (0 = frame complete), bytes produced, bytes consumed]. */
  decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number];
}
type NapiBinding = { DCtx: new () => NapiDCtx; dStreamOutSize(): number };
type Fzstd = typeof import('fzstd');

const CHUNK = 256 * 1024;
/** zstd's job size with a worker thread (see `compress`). */
const ZSTD_JOB = 1024 * 1024;
/**
 * Input piece fed to fzstd per call. fzstd decodes everything a piece holds at once, and a 4-byte
 * RLE block expands to 128 KiB: 1 KiB of input makes at most 32 MiB of output per call.
 */
const FZSTD_SLICE = 1024;

/** The parts of node:zlib's zstd API (absent from @types/node 20) that we use. */
interface ZlibZstd {
  createZstdCompress(options: { chunkSize: number; params: Record<number, number> }): Transform;
  constants: { ZSTD_c_compressionLevel: number; ZSTD_c_checksumFlag: number };
}

let napi: Promise<ZstdNapi> | undefined;
let napiBinding: Promise<NapiBinding> | undefined;
let fzstd: Promise<Fzstd> | undefined;
let zlibZstd: Promise<ZlibZstd | undefined> | undefined;
let zlibDisabled = false;

/** Turns the node:zlib encoder off (`false`) or back on; for tests and benchmarks of the fallbacks. */
export function setZlibZstdEnabled(enabled: boolean): void {
  zlibDisabled = !enabled;
}

function loadZlib(): Promise<ZlibZstd | undefined> {
  zlibZstd ??= import('node:zlib').then((zlib) => {
    const z = zlib as unknown as Partial<ZlibZstd>;
    return typeof z.createZstdCompress === 'function' ? (z as ZlibZstd) : undefined;
  });
  return zlibDisabled ? Promise.resolve(undefined) : zlibZstd;
}

function loadNapi(): Promise<ZstdNapi> {
  napi ??= loadOptional('zstd-napi', 'zstd', async () => {
    const mod = (await import('zstd-napi')) as ZstdNapi & { default?: ZstdNapi };
    return mod.default ?? mod;
  });
  return napi;
}

function loadNapiBinding(): Promise<NapiBinding> {
  napiBinding ??= loadOptional('zstd-napi', 'zstd', async () => {
    const mod = (await import('zstd-napi/binding.js' as string)) as NapiBinding & { default?: NapiBinding };
    return mod.default ?? mod;
  });
  return napiBinding;
}

function loadFzstd(): Promise<Fzstd> {
  fzstd ??= loadOptional('fzstd', 'zstd', async () => {
    const mod = (await import('fzstd')) as Fzstd & { default?: Fzstd };
    return mod.default ?? mod;
  });
  return fzstd;
}

/** Which implementations `compress('zstd', …)` and `decompress('zstd', …)` will use here. */
export async function zstdBackend(): Promise<{
  compress: 'zstd-napi' | 'node:zlib' | undefined;
  decompress: 'zstd-napi' | 'fzstd' | undefined;
}> {
  const napiOk = (await loadNapi().catch(() => undefined)) !== undefined;
  const zlibOk = (await loadZlib()) !== undefined;
  const fzstdOk = (await loadFzstd().catch(() => undefined)) !== undefined;
  return {
    compress: napiOk ? 'zstd-napi' : zlibOk ? 'node:zlib' : undefined,
    decompress: napiOk ? 'zstd-napi' : fzstdOk ? 'fzstd' : undefined,
  };
}

/**
 * Decodes with the pure-JS fzstd (no checksum verification); exported for tests and benchmarks.
 * fzstd decodes a whole pushed piece synchronously, so the input goes in small pieces and the
 * output callback stops the decoder past `maxOutputBytes`.
 */
export async function* decompressZstdJs(
  source: AsyncIterable<Uint8Array>,
  { maxOutputBytes }: Partial<CodecDecompressOptions> = {},
): AsyncGenerator<Uint8Array> {
  const { Decompress } = await loadFzstd();
  const max = maxOutputBytes ?? Number.POSITIVE_INFINITY;
  const queue: Uint8Array[] = [];
  let produced = 0;
  const decoder = new Decompress((chunk) => {
    if (chunk.length === 0) return;
    produced += chunk.length;
    if (produced > max) throw new OutputLimitExceeded(max);
    queue.push(chunk);
  });
  for await (const piece of sliced(source, FZSTD_SLICE)) {
    if (piece.length === 0) continue;
    decoder.push(piece);
    yield* queue.splice(0);
  }
  decoder.push(new Uint8Array(0), true);
  yield* queue.splice(0);
}

/**
 * Decodes with the native zstd-napi; exported for tests and benchmarks. Drives
 * `ZSTD_decompressStream` directly, one output buffer (128 KiB) per call and only when the
 * consumer asks for more: zstd-napi's own DecompressStream decodes a whole input chunk at once
 * (a few KiB of zeros frames became gigabytes in memory).
 */
export async function* decompressZstdNapi(
  source: AsyncIterable<Uint8Array>,
  _options?: Partial<CodecDecompressOptions>,
): AsyncGenerator<Uint8Array> {
  const binding = await loadNapiBinding();
  const dctx = new binding.DCtx();
  const size = binding.dStreamOutSize();
  let inFrame = false;
  for await (let input of source) {
    // A call without input after a frame's end would report "more needed" for the next frame.
    if (input.length === 0) continue;
    for (;;) {
      const out = new Uint8Array(size);
      const [hint, produced, consumed] = dctx.decompressStream(out, input);
      input = input.subarray(consumed);
      if (produced > 0) yield out.subarray(0, produced);
      // Done with this input once it is consumed and the decoder has no more output pending
      // (it filled less than the whole buffer, or the frame ended).
      if (input.length === 0 && (produced < size || hint === 0)) {
        inFrame = hint !== 0;
        break;
      }
    }
  }
  if (inFrame) throw new Error('input ends in the middle of a zstd frame (truncated)');
}

/** zstd: zstd-napi, else node:zlib (encode) or fzstd (decode). */
export const zstdCodec: Codec = {
  async *compress(source, { level }) {
    let napiFailure: unknown;
    const mod = await loadNapi().catch((e: unknown) => {
      napiFailure = e;
      return undefined;
    });
    if (mod) {
      yield* throughTransform(
        source,
        // One zstd worker thread: the compression runs beside the dump and the hashing on the
        // main thread instead of in series with them. Measured on a 300 MB node_modules NAR
        // (dump, sha256, zstd -3, sha256): main-thread CPU 3.6 s → 1.5 s, total CPU unchanged;
        // 1 MiB jobs keep the encoder's buffers small (+10 MB peak RSS for a 512 MiB push, where
        // the 8 MiB default added 60 MB) at 2% larger output. One ordinary frame either way.
        new mod.CompressStream({
          compressionLevel: level,
          checksumFlag: true,
          nbWorkers: 1,
          jobSize: ZSTD_JOB,
        }),
      );
      return;
    }
    const zlib = await loadZlib();
    if (!zlib) throw missingDependency('zstd-napi', 'zstd', napiFailure);
    const params = {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      [zlib.constants.ZSTD_c_checksumFlag]: 1,
    };
    yield* throughTransform(source, zlib.createZstdCompress({ chunkSize: CHUNK, params }));
  },
  async compressBytes(input, { level }) {
    const mod = await loadNapi().catch(() => undefined);
    if (!mod) return collect(zstdCodec.compress(toIterable(input), { level, threads: 1 }));
    // One frame with the content size and checksum, as the streaming encoder writes them.
    return mod.compress(input, { compressionLevel: level, checksumFlag: true });
  },
  async *decompress(source, options) {
    const napiOk = await loadNapiBinding().then(
      () => true,
      () => false,
    );
    if (napiOk) {
      yield* decompressZstdNapi(source, options);
      return;
    }
    try {
      await loadFzstd();
    } catch (cause) {
      throw missingDependency('zstd-napi', 'zstd', cause);
    }
    yield* decompressZstdJs(source, options);
  },
};

async function* toIterable(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of source) chunks.push(c);
  return Buffer.concat(chunks);
}
