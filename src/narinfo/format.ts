/**
 * Writing narinfo text exactly as Nix does (nix-formats.md §4.3): fixed field order, `sha256:<nix32>`
 * hashes, `References: ` always present, signatures sorted as Nix 2.8 does.
 */
import { formatHash } from '../hash/hash.js';
import { compareUtf8 } from '../internal/bytes.js';
import type { NarInfo } from './types.js';

/**
 * Signatures as a sorted, de-duplicated list. Nix keeps them in a set of strings, so they sort by
 * their raw text. (Nix >= 2.34 sorts by key name, then signature bytes; the two orders differ only
 * for several signatures under one key name, or names where one is a prefix of the other.
 * Nix 2.8, the oracle of our interop tests, uses the raw text.)
 */
export function sortSignatures(sigs: Iterable<string>): string[] {
  return [...new Set(sigs)].sort(compareUtf8);
}

/** The canonical text of `info`, ignoring how it was originally spelled. */
export function renderNarInfo(info: NarInfo): string {
  let out = `StorePath: ${info.storePath}\nURL: ${info.url}\nCompression: ${info.compression}\n`;
  if (info.fileHash) out += `FileHash: ${formatHash(info.fileHash, 'nix32')}\n`;
  if (info.fileSize !== undefined) out += `FileSize: ${info.fileSize}\n`;
  out += `NarHash: ${formatHash(info.narHash, 'nix32')}\nNarSize: ${info.narSize}\n`;
  out += `References: ${[...new Set(info.references)].sort(compareUtf8).join(' ')}\n`;
  if (info.deriver !== undefined) out += `Deriver: ${info.deriver}\n`;
  for (const sig of sortSignatures(info.sigs)) out += `Sig: ${sig}\n`;
  if (info.ca !== undefined) out += `CA: ${info.ca}\n`;
  return out;
}

/**
 * Writes a narinfo. A freshly built info is written exactly as Nix writes it; a parsed one whose
 * fields are unchanged is written back byte for byte as it was read.
 *
 * @example formatNarInfo(parseNarInfo(text)) === text
 */
export function formatNarInfo(info: NarInfo): string {
  const canonical = renderNarInfo(info);
  return info.original && info.original.canonical === canonical ? info.original.text : canonical;
}
