/**
 * When an optional codec package cannot be loaded, the error names the npm package to install, and
 * decoders fall back to the portable implementation where there is one.
 */
import { describe, expect, it, vi } from 'vitest';
import { collectBytes, sameBytes, sampleBytes } from './helpers.js';

function unavailable(name: string): () => never {
  return () => {
    throw new Error(`Cannot find package '${name}'`);
  };
}

describe('missing optional dependencies', () => {
  it('xz without node-liblzma: compress names the package, decompress falls back to WebAssembly', async () => {
    const data = sampleBytes(200_000);
    const { compress: realCompress } = await import('../../src/compression/index.js');
    const packed = await collectBytes(realCompress('xz', data));
    vi.resetModules();
    vi.doMock('node-liblzma', unavailable('node-liblzma'));
    try {
      const { compress, decompress } = await import('../../src/compression/index.js');
      const err = await collectBytes(compress('xz', data)).catch((e: unknown) => e);
      // A fresh module graph has its own NixcacheError class, so compare the code, not the class.
      expect((err as { code?: string }).code).toBe('MISSING_DEPENDENCY');
      expect((err as Error).message).toContain("'node-liblzma'");
      expect(sameBytes(await collectBytes(decompress('xz', packed)), data)).toBe(true);
    } finally {
      vi.doUnmock('node-liblzma');
      vi.resetModules();
    }
  });

  it('zstd without zstd-napi (and node:zlib zstd turned off): decodes with fzstd, compress names zstd-napi', async () => {
    const data = sampleBytes(200_000);
    const { compress: realCompress } = await import('../../src/compression/index.js');
    // Two frames back to back: the fallback must decode both (node:zlib's decoder would stop at one).
    const a = await collectBytes(realCompress('zstd', data.subarray(0, 100_000)));
    const b = await collectBytes(realCompress('zstd', data.subarray(100_000)));
    const packed = new Uint8Array(a.length + b.length);
    packed.set(a);
    packed.set(b, a.length);
    vi.resetModules();
    vi.doMock('zstd-napi', unavailable('zstd-napi'));
    try {
      const { setZlibZstdEnabled, zstdBackend } = await import('../../src/compression/zstd.js');
      setZlibZstdEnabled(false);
      const { compress, decompress } = await import('../../src/compression/index.js');
      expect((await zstdBackend()).decompress).toBe('fzstd');
      const err = await collectBytes(compress('zstd', data)).catch((e: unknown) => e);
      // A fresh module graph has its own NixcacheError class, so compare the code, not the class.
      expect((err as { code?: string }).code).toBe('MISSING_DEPENDENCY');
      expect((err as Error).message).toContain("'zstd-napi'");
      expect(sameBytes(await collectBytes(decompress('zstd', packed)), data)).toBe(true);
    } finally {
      vi.doUnmock('zstd-napi');
      vi.resetModules();
    }
  });

  it('bzip2 without compressjs names it', async () => {
    vi.resetModules();
    vi.doMock('compressjs', unavailable('compressjs'));
    try {
      const { compress } = await import('../../src/compression/index.js');
      const err = await collectBytes(compress('bzip2', sampleBytes(10))).catch((e: unknown) => e);
      // A fresh module graph has its own NixcacheError class, so compare the code, not the class.
      expect((err as { code?: string }).code).toBe('MISSING_DEPENDENCY');
      expect((err as Error).message).toContain("'compressjs'");
    } finally {
      vi.doUnmock('compressjs');
      vi.resetModules();
    }
  });
});
