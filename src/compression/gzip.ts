/**
 * gzip codec over `node:zlib` (loaded on first use). Nix reads gzip NARs through libarchive and
 * names them without an extension (nix-formats.md §7.1). Concatenated gzip members decode as one.
 */
import type { Codec } from './codec.js';
import { throughTransform } from './codec.js';

const CHUNK = 256 * 1024;

/** gzip: node:zlib streaming transforms. */
export const gzipCodec: Codec = {
  async *compress(source, { level }) {
    const zlib = await import('node:zlib');
    yield* throughTransform(source, zlib.createGzip({ level, chunkSize: CHUNK }));
  },
  async *decompress(source) {
    const zlib = await import('node:zlib');
    yield* throughTransform(source, zlib.createGunzip({ chunkSize: CHUNK }));
  },
};
