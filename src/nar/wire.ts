/**
 * The NAR wire format (nix-formats.md §6.1) and the hardened limits of §6.3, defined once for
 * the reader, the writer, the listing and the filesystem walkers: the magic, the tags, `str()`
 * framing (u64 little-endian length, bytes, zero padding to 8) and name/target validation.
 */
import { concatBytes, fromUtf8 } from '../internal/bytes.js';

/** The archive magic, the first string of every NAR. */
export const NAR_MAGIC = 'nix-archive-1';

/**
 * Directory depth limit: a node whose depth (number of path components) reaches this is refused.
 * Nix 2.8 has no limit of its own (it dumps, restores and verifies 100-level trees), but it names
 * files by full paths, so on Linux (PATH_MAX 4096) nothing it writes to or reads from disk is
 * deeper than about 2000 levels. 4096 accepts all of that; it bounds the work of hostile input
 * (paths are rebuilt per entry) and keeps the few recursive helpers (listing JSON) far from the
 * stack limit. Every walker and decoder is iterative, with an explicit stack.
 *
 * Note: the May-2026 hardened Nix releases refuse depth 64 and beyond (nix-formats.md §6.2-6.3);
 * a NAR deeper than that is valid for Nix 2.8 but not for them.
 */
export const NAR_MAX_DEPTH = 4096;
/** Longest accepted entry name, in bytes. */
export const NAR_MAX_NAME_LENGTH = 255;
/** Longest accepted symlink target, in bytes. */
export const NAR_MAX_TARGET_LENGTH = 4095;
/** Longest accepted tag (`(`, `type`, `contents`, ...), in bytes. */
export const NAR_MAX_TAG_LENGTH = 32;

/** Bytes of zero padding after a string of `length` bytes. */
export function padLength(length: number): number {
  return (8 - (length % 8)) % 8;
}

/** Size of `str(s)` on the wire for a string of `length` bytes. */
export function strSize(length: number): number {
  return 8 + length + padLength(length);
}

/** Writes `n` (0 ≤ n < 2^53) as a u64 little-endian at `at`. */
export function writeU64(out: Uint8Array, at: number, n: number): void {
  const lo = n >>> 0;
  const hi = Math.floor(n / 0x100000000);
  out[at] = lo & 0xff;
  out[at + 1] = (lo >>> 8) & 0xff;
  out[at + 2] = (lo >>> 16) & 0xff;
  out[at + 3] = lo >>> 24;
  out[at + 4] = hi & 0xff;
  out[at + 5] = (hi >>> 8) & 0xff;
  out[at + 6] = (hi >>> 16) & 0xff;
  out[at + 7] = hi >>> 24;
}

/** Reads a u64 little-endian as a number; values ≥ 2^53 come back as `Infinity` (never exact). */
export function readU64(bytes: Uint8Array, at: number): number {
  const lo = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  const hi = (bytes[at + 4]! | (bytes[at + 5]! << 8) | (bytes[at + 6]! << 16) | (bytes[at + 7]! << 24)) >>> 0;
  if (hi >= 0x200000) return Number.POSITIVE_INFINITY;
  return hi * 0x100000000 + lo;
}

/** Encodes `str(s)` for a short string (tags, names, targets). */
export function encodeStr(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(strSize(bytes.length));
  writeU64(out, 0, bytes.length);
  out.set(bytes, 8);
  return out;
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Tags as raw bytes (the value compared against what the reader finds). */
export const TAG = {
  magic: ascii(NAR_MAGIC),
  open: ascii('('),
  close: ascii(')'),
  type: ascii('type'),
  regular: ascii('regular'),
  symlink: ascii('symlink'),
  directory: ascii('directory'),
  executable: ascii('executable'),
  contents: ascii('contents'),
  target: ascii('target'),
  entry: ascii('entry'),
  name: ascii('name'),
  node: ascii('node'),
  empty: new Uint8Array(0),
} as const;

/** Pre-encoded token sequences the writers emit (each already padded). */
export const FRAME = {
  /** `str(magic) str("(") str("type")` — the start of every archive. */
  header: concat(TAG.magic, TAG.open, TAG.type),
  /** `str("regular")` then optional executable marker then `str("contents")`. */
  regular: concat(TAG.regular, TAG.contents),
  regularExecutable: concat(TAG.regular, TAG.executable, TAG.empty, TAG.contents),
  /** `str("symlink") str("target")`, followed by str(target) and `str(")")`. */
  symlink: concat(TAG.symlink, TAG.target),
  directory: concat(TAG.directory),
  /** `str("entry") str("(") str("name")`, followed by str(name). */
  entryName: concat(TAG.entry, TAG.open, TAG.name),
  /** `str("node") str("(") str("type")`, the start of a child node. */
  nodeType: concat(TAG.node, TAG.open, TAG.type),
  close: concat(TAG.close),
  /** `str(")") str(")")`: closes a child node and its entry. */
  closeEntry: concat(TAG.close, TAG.close),
} as const;

function concat(...tokens: Uint8Array[]): Uint8Array {
  return concatBytes(tokens.map(encodeStr));
}

/**
 * Why `name` is not a valid NAR entry name, or undefined when it is: non-empty, not `.` or
 * `..`, no `/`, no NUL, at most 255 bytes.
 */
export function nameProblem(name: Uint8Array): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length > NAR_MAX_NAME_LENGTH)
    return `name of ${name.length} bytes is too long (max ${NAR_MAX_NAME_LENGTH})`;
  if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e)))
    return 'reserved name';
  for (let i = 0; i < name.length; i++) {
    if (name[i] === 0x2f) return "name contains '/'";
    if (name[i] === 0) return 'name contains NUL';
  }
  return undefined;
}

/** Why `target` is not a valid symlink target, or undefined: 1..4095 bytes, no NUL. */
export function targetProblem(target: Uint8Array): string | undefined {
  if (target.length === 0) return 'empty symlink target';
  if (target.length > NAR_MAX_TARGET_LENGTH) {
    return `symlink target of ${target.length} bytes is too long (max ${NAR_MAX_TARGET_LENGTH})`;
  }
  if (target.includes(0)) return 'symlink target contains NUL';
  return undefined;
}

/**
 * Renders bytes for an error message: UTF-8 text in single quotes, control characters,
 * quotes, backslashes and invalid UTF-8 escaped, long values shortened.
 */
export function showBytes(bytes: Uint8Array, max = 80): string {
  const cut = bytes.length > max ? bytes.subarray(0, max) : bytes;
  let text = fromUtf8(cut).replace(/[\u0000-\u001f\u007f'\\\ufffd]/g, (c) =>
    c === '\ufffd'
      ? '\\ufffd'
      : c === "'" || c === '\\'
        ? `\\${c}`
        : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  if (cut !== bytes) text += `...(${bytes.length} bytes)`;
  return `'${text}'`;
}

/** Describes where a problem is, for error messages: the entry path or "the root". */
export function showPath(path: string): string {
  return path === '' ? 'the root entry' : `entry '${path}'`;
}
