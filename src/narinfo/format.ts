/**
 * Writing narinfo text exactly as Nix does (nix-formats.md §4.3): fixed field order, `sha256:<nix32>`
 * hashes, `References: ` always present, signatures sorted by (key name, signature bytes).
 */
import { formatHash } from '../hash/hash.js';
import { compareBytes, compareUtf8, fromBase64Lenient } from '../internal/bytes.js';
import type { NarInfo } from './types.js';

function signatureOrder(a: string, b: string): number {
  const ia = a.indexOf(':');
  const ib = b.indexOf(':');
  const byName = compareUtf8(a.slice(0, ia), b.slice(0, ib));
  if (byName !== 0) return byName;
  try {
    return compareBytes(fromBase64Lenient(a.slice(ia + 1)), fromBase64Lenient(b.slice(ib + 1)));
  } catch {
    return compareUtf8(a, b);
  }
}

/** Signatures as a sorted, de-duplicated list (Nix keeps them in a set). */
export function sortSignatures(sigs: Iterable<string>): string[] {
  return [...new Set(sigs)].sort(signatureOrder);
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
