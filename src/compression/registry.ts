/**
 * The compression methods Nix knows, the file extension each one gives a NAR in a binary cache,
 * and the level ranges nixcache accepts. Implements nix-formats.md §7.1 ("NAR naming and
 * compression") and the Content-Encoding notes of §7.2. Pure: no `node:*`, no codec is loaded here.
 */
import { NixcacheError } from '../errors.js';
import { COMPRESSION_METHODS, type CompressionMethod } from '../narinfo/types.js';

// The names themselves are part of the narinfo format; they are defined once, there.
export { COMPRESSION_METHODS, type CompressionMethod } from '../narinfo/types.js';

/** The methods nixcache can compress and decompress itself. */
export const SUPPORTED_COMPRESSION_METHODS = ['none', 'xz', 'zstd', 'bzip2', 'br', 'gzip'] as const;

/** A method that `compress` and `decompress` implement. */
export type SupportedCompressionMethod = (typeof SUPPORTED_COMPRESSION_METHODS)[number];

/** What Nix uploads with when no `compression=` is given. */
export const DEFAULT_COMPRESSION_METHOD: SupportedCompressionMethod = 'xz';

const KNOWN: ReadonlySet<string> = new Set(COMPRESSION_METHODS);
const SUPPORTED: ReadonlySet<string> = new Set(SUPPORTED_COMPRESSION_METHODS);

const EXTENSIONS: Readonly<Partial<Record<CompressionMethod, string>>> = {
  xz: '.xz',
  bzip2: '.bz2',
  zstd: '.zst',
  lzip: '.lzip',
  lz4: '.lz4',
  br: '.br',
};

/**
 * True when `name` is one of the compression names Nix knows.
 *
 * @example
 * isCompressionMethod('zstd') // true
 * isCompressionMethod('zst')  // false
 */
export function isCompressionMethod(name: string): name is CompressionMethod {
  return KNOWN.has(name);
}

/**
 * True when nixcache implements `method` (none, xz, zstd, bzip2, br, gzip).
 *
 * @example
 * isSupportedCompressionMethod('lz4') // false
 */
export function isSupportedCompressionMethod(name: string): name is SupportedCompressionMethod {
  return SUPPORTED.has(name);
}

/**
 * Checks a compression name, e.g. from a narinfo or a store URL.
 *
 * @throws NixcacheError `BAD_ARGUMENT` when Nix does not know the name.
 * @example
 * parseCompressionMethod('bzip2') // 'bzip2'
 */
export function parseCompressionMethod(name: string): CompressionMethod {
  if (!isCompressionMethod(name)) {
    throw new NixcacheError('BAD_ARGUMENT', `unknown compression method '${name}'`, {
      field: 'compression',
      expected: COMPRESSION_METHODS.join(', '),
      actual: name,
    });
  }
  return name;
}

/**
 * The suffix Nix appends to `nar/<FileHash>.nar` for a method: `.xz`, `.bz2`, `.zst`, `.lzip`,
 * `.lz4`, `.br`, and the empty string for `none`, `gzip` and every other method.
 *
 * @throws NixcacheError `BAD_ARGUMENT` when Nix does not know the method.
 * @example
 * `nar/${fileHash}.nar${narFileExtension('zstd')}` // 'nar/….nar.zst'
 * narFileExtension('gzip') // ''
 */
export function narFileExtension(method: string): string {
  return EXTENSIONS[parseCompressionMethod(method)] ?? '';
}

/**
 * True when a `Content-Encoding: <method>` header on a `.narinfo`, `.ls` or log upload is decoded by
 * every Nix version: `br` and `gzip` (Nix ≥ 2.34 relies on libcurl, which knows only gzip, deflate,
 * br and zstd as built). `none` means no header and is portable too.
 *
 * @example
 * isPortableContentEncoding('xz') // false: only Nix ≤ 2.33 decodes it
 */
export function isPortableContentEncoding(method: string): boolean {
  return method === 'none' || method === 'br' || method === 'gzip';
}

/** Level range and the default each codec uses when no level is given (the library default, as Nix). */
export const COMPRESSION_LEVELS: Readonly<
  Record<SupportedCompressionMethod, { readonly min: number; readonly max: number; readonly default: number }>
> = {
  none: { min: 0, max: 0, default: 0 },
  xz: { min: 0, max: 9, default: 6 },
  zstd: { min: 1, max: 19, default: 3 },
  bzip2: { min: 1, max: 9, default: 9 },
  br: { min: 0, max: 11, default: 11 },
  gzip: { min: 0, max: 9, default: 6 },
};

/** The first bytes of a NAR: the length-prefixed string `nix-archive-1`. */
const NAR_HEAD = [0x0d, 0, 0, 0, 0, 0, 0, 0, 0x6e, 0x69, 0x78, 0x2d]; // 13, "nix-"

const MAGICS: readonly (readonly [SupportedCompressionMethod, readonly number[]])[] = [
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
  ['gzip', [0x1f, 0x8b]],
  ['none', NAR_HEAD],
];

/** How many leading bytes {@link detectCompression} looks at. */
export const COMPRESSION_MAGIC_LENGTH = 12;

/**
 * The compression of a file from its first bytes (at least {@link COMPRESSION_MAGIC_LENGTH}
 * when available), as Nix's libarchive does for a narinfo whose `Compression:` is absent, empty
 * or wrong: xz, zstd, bzip2 and gzip by their magic numbers, `none` for a bare NAR. Brotli has no
 * magic number, so it is never detected (undefined, as for anything unrecognised).
 *
 * @example
 * detectCompression(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) // 'xz'
 */
export function detectCompression(head: Uint8Array): SupportedCompressionMethod | undefined {
  for (const [method, magic] of MAGICS) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return method;
  }
  return undefined;
}
