/**
 * Writing narinfo text exactly as Nix does (nix-formats.md §4.3): fixed field order, `sha256:<nix32>`
 * hashes, `References: ` always present, signatures sorted as Nix 2.8 does.
 */
import { formatHash, hashEquals, type NixHash } from '../hash/hash.js';
import { compareUtf8 } from '../internal/bytes.js';
import { storeDirOf } from './fingerprint.js';
import { parseNarInfo } from './parse.js';
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

function sameHash(a: NixHash | undefined, b: NixHash | undefined): boolean {
  return a === undefined || b === undefined ? a === b : hashEquals(a, b);
}

/** True when two lists are equal as sets (what the canonical rendering writes of them). */
function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  // Usually both are in the same order already.
  if (a.length === b.length && a.every((v, i) => v === b[i])) return true;
  const x = sortSignatures(a);
  const y = sortSignatures(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * True when `info` and `other` render to the same canonical text, compared field by field.
 */
function sameFields(info: NarInfo, other: NarInfo): boolean {
  return (
    info.storePath === other.storePath &&
    info.url === other.url &&
    info.compression === other.compression &&
    info.fileSize === other.fileSize &&
    info.narSize === other.narSize &&
    info.deriver === other.deriver &&
    info.ca === other.ca &&
    sameHash(info.narHash, other.narHash) &&
    sameHash(info.fileHash, other.fileHash) &&
    sameSet(info.references, other.references) &&
    sameSet(info.sigs, other.sigs)
  );
}

/** True when the text `info` was parsed from still describes its fields. */
function originalHolds(info: NarInfo, text: string): boolean {
  let parsed: NarInfo;
  try {
    // Parsed afresh, so that changes made in place (a pushed signature) are seen too.
    parsed = parseNarInfo(text, { storeDir: storeDirOf(info.storePath) });
  } catch {
    return false;
  }
  return sameFields(info, parsed);
}

/**
 * Writes a narinfo. A freshly built info is written exactly as Nix writes it; a parsed one whose
 * fields are unchanged is written back byte for byte as it was read.
 *
 * @example formatNarInfo(parseNarInfo(text)) === text
 */
export function formatNarInfo(info: NarInfo): string {
  const original = info.original;
  return original !== undefined && originalHolds(info, original.text) ? original.text : renderNarInfo(info);
}
