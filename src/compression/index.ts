/**
 * `nixcache/compression`: the compression methods of binary-cache NARs (nix-formats.md §7.1–7.2).
 * Importing this entry loads no codec; each one is imported on first use.
 */
export { type CompressOptions, compress, type DecompressOptions, decompress } from './compress.js';
export {
  COMPRESSION_LEVELS,
  COMPRESSION_MAGIC_LENGTH,
  COMPRESSION_METHODS,
  type CompressionMethod,
  DEFAULT_COMPRESSION_METHOD,
  detectCompression,
  isCompressionMethod,
  isPortableContentEncoding,
  isSupportedCompressionMethod,
  narFileExtension,
  parseCompressionMethod,
  SUPPORTED_COMPRESSION_METHODS,
  type SupportedCompressionMethod,
} from './registry.js';
