/**
 * zstd codec (nix-formats.md §7.1, extension `.zst`). Decoding uses the optional native package
 * `zstd-napi`, else the pure-JS `fzstd` (no checksum verification). `node:zlib`'s zstd decoder is
 * deliberately not used: on Node 24.21 it stops after the first frame and silently drops the rest of
 * a multi-frame input, which is valid zstd. Encoding uses `zstd-napi`, else `node:zlib`'s zstd
 * (Node ≥ 22.15 / 23.8). All paths stream with bounded memory; frames written here carry the
 * content checksum, like the `zstd` CLI.
 */
import type { Transform } from 'node:stream';
import type { Codec } from './codec.js';
import { loadOptional, missingDependency, throughTransform } from './codec.js';

type ZstdNapi = typeof import('zstd-napi');
type Fzstd = typeof import('fzstd');

const CHUNK = 256 * 1024;

/** The parts of node:zlib's zstd API (absent from @types/node 20) that we use. */
interface ZlibZstd {
  createZstdCompress(options: { chunkSize: number; params: Record<number, number> }): Transform;
  constants: { ZSTD_c_compressionLevel: number; ZSTD_c_checksumFlag: number };
}

let napi: Promise<ZstdNapi> | undefined;
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

/** Decodes with the pure-JS fzstd (no checksum verification); exported for tests and benchmarks. */
export async function* decompressZstdJs(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const { Decompress } = await loadFzstd();
  const queue: Uint8Array[] = [];
  const decoder = new Decompress((chunk) => {
    if (chunk.length > 0) queue.push(chunk);
  });
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    decoder.push(chunk);
    yield* queue.splice(0);
  }
  decoder.push(new Uint8Array(0), true);
  yield* queue.splice(0);
}

/** Decodes with the native zstd-napi; exported for tests and benchmarks. */
export async function* decompressZstdNapi(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const { DecompressStream } = await loadNapi();
  yield* throughTransform(source, new DecompressStream());
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
        new mod.CompressStream({ compressionLevel: level, checksumFlag: true }),
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
  async *decompress(source) {
    const napiOk = await loadNapi().then(
      () => true,
      () => false,
    );
    if (napiOk) {
      yield* decompressZstdNapi(source);
      return;
    }
    try {
      await loadFzstd();
    } catch (cause) {
      throw missingDependency('zstd-napi', 'zstd', cause);
    }
    yield* decompressZstdJs(source);
  },
};
