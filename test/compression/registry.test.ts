import { describe, expect, it } from 'vitest';
import {
  COMPRESSION_METHODS,
  compress,
  decompress,
  isCompressionMethod,
  isPortableContentEncoding,
  isSupportedCompressionMethod,
  narFileExtension,
  parseCompressionMethod,
} from '../../src/compression/index.js';
import { isNixcacheError } from '../../src/errors.js';

describe('compression registry (nix-formats.md §7.1)', () => {
  it('knows exactly the names Nix knows', () => {
    expect([...COMPRESSION_METHODS].sort()).toEqual(
      [
        'none',
        'br',
        'bzip2',
        'compress',
        'grzip',
        'gzip',
        'lrzip',
        'lz4',
        'lzip',
        'lzma',
        'lzop',
        'xz',
        'zstd',
      ].sort(),
    );
    expect(isCompressionMethod('zstd')).toBe(true);
    expect(isCompressionMethod('zst')).toBe(false);
    expect(isCompressionMethod('XZ')).toBe(false);
    expect(isSupportedCompressionMethod('lz4')).toBe(false);
    expect(isSupportedCompressionMethod('bzip2')).toBe(true);
  });

  it('gives the NAR file extension of the §7.1 table', () => {
    const table: Record<string, string> = {
      xz: '.xz',
      bzip2: '.bz2',
      zstd: '.zst',
      lzip: '.lzip',
      lz4: '.lz4',
      br: '.br',
      none: '',
      gzip: '',
      compress: '',
      grzip: '',
      lrzip: '',
      lzma: '',
      lzop: '',
    };
    for (const method of COMPRESSION_METHODS) expect(narFileExtension(method), method).toBe(table[method]);
    expect(() => narFileExtension('zip')).toThrow(/unknown compression method 'zip'/);
  });

  it('parses method names and rejects unknown ones with BAD_ARGUMENT', () => {
    expect(parseCompressionMethod('br')).toBe('br');
    try {
      parseCompressionMethod('brotli');
      expect.unreachable();
    } catch (e) {
      expect(isNixcacheError(e, 'BAD_ARGUMENT')).toBe(true);
    }
  });

  it('says which Content-Encodings every Nix decodes', () => {
    expect(['none', 'br', 'gzip'].every(isPortableContentEncoding)).toBe(true);
    expect(['xz', 'zstd', 'bzip2'].some(isPortableContentEncoding)).toBe(false);
  });

  it('rejects methods it does not implement with UNSUPPORTED naming the method, at call time', () => {
    for (const method of ['lz4', 'lzip', 'compress', 'grzip', 'lrzip', 'lzma', 'lzop']) {
      for (const op of [compress, decompress]) {
        try {
          op(method, new Uint8Array(1));
          expect.unreachable();
        } catch (e) {
          expect(isNixcacheError(e, 'UNSUPPORTED'), method).toBe(true);
          expect((e as Error).message).toContain(`'${method}'`);
        }
      }
    }
    expect(() => compress('zip', new Uint8Array(0))).toThrow(/unknown compression method/);
  });

  it('rejects levels out of range with BAD_ARGUMENT', () => {
    for (const [method, level] of [
      ['xz', 10],
      ['xz', -1],
      ['zstd', 0],
      ['zstd', 20],
      ['bzip2', 0],
      ['br', 12],
      ['gzip', 1.5],
    ] as const) {
      try {
        compress(method, new Uint8Array(0), { level });
        expect.unreachable();
      } catch (e) {
        expect(isNixcacheError(e, 'BAD_ARGUMENT'), `${method} ${level}`).toBe(true);
      }
    }
    expect(() => compress('xz', new Uint8Array(0), { threads: -1 })).toThrow(/threads/);
  });
});
