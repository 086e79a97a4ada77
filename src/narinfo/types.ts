/**
 * The narinfo data model (nix-formats.md §4): what a binary cache says about one store path.
 */
import type { NixHash } from '../hash/hash.js';

/** Compression method names Nix knows (nix-formats.md §7.1). */
export const COMPRESSION_METHODS = [
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
] as const;

export type CompressionMethod = (typeof COMPRESSION_METHODS)[number];

/** The keys Nix reads in a narinfo, in the order Nix writes them (nix-formats.md §4.1). */
export const NARINFO_KEYS = [
  'StorePath',
  'URL',
  'Compression',
  'FileHash',
  'FileSize',
  'NarHash',
  'NarSize',
  'References',
  'Deriver',
  'Sig',
  'CA',
] as const;

/** A parsed or freshly built narinfo. Plain, readonly data. */
export interface NarInfo {
  /** Full store path, e.g. `/nix/store/<hash>-<name>`. */
  readonly storePath: string;
  /** Location of the (compressed) NAR, relative to the cache root. */
  readonly url: string;
  readonly compression: CompressionMethod;
  /** Hash of the compressed file (Nix never checks it; nixcache does). */
  readonly fileHash?: NixHash;
  readonly fileSize?: number;
  /** Hash of the uncompressed NAR; covered by signatures. */
  readonly narHash: NixHash;
  readonly narSize: number;
  /** Basenames (`<hash>-<name>`) of the references, sorted bytewise, unique. */
  readonly references: readonly string[];
  /** Basename of the deriver `.drv`, when known. */
  readonly deriver?: string;
  /** Signatures as `keyname:base64`, as they appear in `Sig:` lines. */
  readonly sigs: readonly string[];
  /** Content address (`fixed:r:sha256:…`, `text:sha256:…`), when the path is content-addressed. */
  readonly ca?: string;
  /**
   * The text this narinfo was parsed from. `formatNarInfo` writes it back unchanged as long as the
   * fields still describe it, so real-world narinfos round-trip byte for byte.
   */
  readonly original?: NarInfoOriginal;
}

export interface NarInfoOriginal {
  /** The exact text that was parsed. */
  readonly text: string;
}
