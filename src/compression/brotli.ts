/**
 * Brotli (`br`) codec over `node:zlib` (loaded on first use). Nix decodes `br` with its own brotli
 * sink rather than libarchive (nix-formats.md §7.1); the NAR extension is `.br`.
 */
import type { Codec } from './codec.js';
import { throughTransform } from './codec.js';

const CHUNK = 256 * 1024;

/** br: node:zlib streaming transforms; quality = level (Nix's default is brotli's 11). */
export const brotliCodec: Codec = {
  async *compress(source, { level }) {
    const zlib = await import('node:zlib');
    const params = { [zlib.constants.BROTLI_PARAM_QUALITY]: level };
    yield* throughTransform(source, zlib.createBrotliCompress({ params, chunkSize: CHUNK }));
  },
  async *decompress(source) {
    const zlib = await import('node:zlib');
    yield* throughTransform(source, zlib.createBrotliDecompress({ chunkSize: CHUNK }));
  },
};
