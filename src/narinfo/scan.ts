/**
 * The byte-level checks of the narinfo parser's fast path (parse.ts): the text as one byte per
 * UTF-16 code unit in a reused buffer, viewed four bytes at a time, and store path basenames,
 * hash parts and store directories checked with character tables over those words. Each function
 * reads only locals and parameters where it matters: module bindings cost V8 extra checks on every
 * read in unbundled ESM.
 */
import { HASH_PART_LENGTH, MAX_NAME_LENGTH } from '../store-path/store-path.js';

// Character classes of store path basenames (nix-formats.md §3), indexed by byte (0xff: not ASCII).
const NIX32_CHAR = 1;
const NAME_CHAR = 2;
const CHAR_CLASS = new Uint8Array(256);
for (const c of '0123456789abcdfghijklmnpqrsvwxyz') CHAR_CLASS[c.charCodeAt(0)]! |= NIX32_CHAR;
for (const c of '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-._?=')
  CHAR_CLASS[c.charCodeAt(0)]! |= NAME_CHAR;

/** True when `bytes` holds `codes` at `start`. */
export function hasCodesAt(bytes: Uint8Array, start: number, codes: Uint8Array): boolean {
  for (let i = 0; i < codes.length; i++) if (codes[i] !== bytes[start + i]) return false;
  return true;
}

// The same classes for two characters at once, indexed by a 16-bit little-endian pair: the class
// bits both share. Only pairs of ASCII name characters are non-zero.
const PAIR_CLASS = new Uint8Array(1 << 16);
for (let a = 0; a < 128; a++) {
  if (CHAR_CLASS[a] === 0) continue;
  for (let b = 0; b < 128; b++) PAIR_CLASS[a | (b << 8)] = CHAR_CLASS[a]! & CHAR_CLASS[b]!;
}
// The hot helpers below read only locals and parameters: module bindings, imported ones most of
// all, cost V8 extra loads and checks on every read (in a bundle they would not).
export const HASH_LENGTH = HASH_PART_LENGTH;
const MAX_NAME = MAX_NAME_LENGTH;

/**
 * True when the 32 bytes from `start` are nix32 digits. `words` views the same bytes four at a
 * time (little-endian), and both halves of a word are checked with PAIR_CLASS: a quarter of the
 * loads of a byte loop. The bytes of the first and last word that are outside the hash part are
 * replaced by a valid digit.
 */
export function isHashPartAt(words: Int32Array, start: number): boolean {
  // A local name keeps the bytecode small enough for V8 to inline this into its callers.
  const pair = PAIR_CLASS;
  const k = start >> 2;
  // Keeps the bytes of a word from `start` on; the others become '0', a digit.
  const from = -1 << ((start & 3) << 3);
  const zeros = 0x30303030;
  const first = (words[k]! & from) | (zeros & ~from);
  const w1 = words[k + 1]!;
  const w2 = words[k + 2]!;
  const w3 = words[k + 3]!;
  const w4 = words[k + 4]!;
  const w5 = words[k + 5]!;
  const w6 = words[k + 6]!;
  const w7 = words[k + 7]!;
  // When `start` is a word boundary, the ninth word is entirely outside and replaced.
  const last = (words[k + 8]! & ~from) | (zeros & from);
  return (
    (pair[first & 0xffff]! &
      pair[first >>> 16]! &
      pair[w1 & 0xffff]! &
      pair[w1 >>> 16]! &
      pair[w2 & 0xffff]! &
      pair[w2 >>> 16]! &
      pair[w3 & 0xffff]! &
      pair[w3 >>> 16]! &
      pair[w4 & 0xffff]! &
      pair[w4 >>> 16]! &
      pair[w5 & 0xffff]! &
      pair[w5 >>> 16]! &
      pair[w6 & 0xffff]! &
      pair[w6 >>> 16]! &
      pair[w7 & 0xffff]! &
      pair[w7 >>> 16]! &
      pair[last & 0xffff]! &
      pair[last >>> 16]! &
      1) /* NIX32_CHAR */ !==
    0
  );
}

/**
 * The index of the first byte at or after `start` that is not a name character, found two words
 * at a time. Something must stop it (the callers' lines end with a newline), and one word after
 * that must be readable (`codeUnits` pads).
 */
export function nameEndAt(words: Int32Array, start: number): number {
  const pair = PAIR_CLASS;
  const name = 2; // NAME_CHAR; `>> 1` turns it into 0 or 1
  let k = start >> 2;
  // Keeps the bytes of a word from `start` on; the others become 'a', a name character.
  const from = -1 << ((start & 3) << 3);
  let a = (words[k]! & from) | (0x61616161 & ~from);
  let b = words[k + 1]!;
  while ((pair[a & 0xffff]! & pair[a >>> 16]! & pair[b & 0xffff]! & pair[b >>> 16]! & name) !== 0) {
    k += 2;
    a = words[k]!;
    b = words[k + 1]!;
  }
  // The first byte of `a`, then `b`, that is not a name character; found without branches,
  // which would be taken at random.
  const aIsName = (pair[a & 0xffff]! & pair[a >>> 16]! & name) >> 1;
  let w = a ^ ((a ^ b) & -aIsName);
  const lowPair = (pair[w & 0xffff]! & name) >> 1;
  w >>>= lowPair << 4;
  // The high byte of a pair whose low byte is a name character: its class decides alone.
  return ((k + aIsName) << 2) + (lowPair << 1) + ((pair[(w & 0xff) | 0x6100]! & name) >> 1);
}

/** True when the name `bytes[start, end)` (all name characters) is not too long and not '.'-like. */
export function isNameOk(bytes: Uint8Array, start: number, end: number): boolean {
  const length = end - start;
  if (length === 0 || length > MAX_NAME) return false;
  if (bytes[start] !== 46 /* . */) return true;
  // '.', '..', '.-…' and '..-…' are not names.
  const second = length > 1 ? bytes[start + 1]! : -1;
  if (second === -1 || second === 45) return false;
  return !(second === 46 && (length === 2 || bytes[start + 2] === 45));
}

/**
 * Reads a store path basename `<32 nix32 chars>-<name>` starting at `bytes[start]` and ending at
 * `limit` or at a space before it; `bytes[limit]` must not be a name character (the callers pass
 * the index of a line's newline). Returns where it ends, or -1 when it is not valid there (the
 * general `parseStorePathBasename` then explains why).
 */
export function basenameEnd(bytes: Uint8Array, words: Int32Array, start: number, limit: number): number {
  const nameStart = start + HASH_LENGTH + 1;
  if (nameStart >= limit || bytes[nameStart - 1] !== 45 /* - */ || !isHashPartAt(words, start)) return -1;
  const end = nameEndAt(words, nameStart);
  if (end > limit || (end < limit && bytes[end] !== 32) /* space */ || !isNameOk(bytes, nameStart, end)) {
    return -1;
  }
  return end;
}

/** True when `bytes[start, end)` is exactly a valid store path basename. */
export function isBasenameAt(bytes: Uint8Array, words: Int32Array, start: number, end: number): boolean {
  return basenameEnd(bytes, words, start, end) === end;
}

/** True when `bytes[a, aEnd)` sorts strictly before `bytes[b, bEnd)`. */
export function bytesBefore(bytes: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): boolean {
  const n = Math.min(aEnd - a, bEnd - b);
  for (let i = 0; i < n; i++) {
    const d = bytes[a + i]! - bytes[b + i]!;
    if (d !== 0) return d < 0;
  }
  return aEnd - a < bEnd - b;
}

const encoder = new TextEncoder();
/** Reused between calls (parsing is synchronous); texts above SCRATCH_LIMIT get their own. */
let scratch = new Uint8Array(0);
let scratchWords = new Int32Array(0);
export const SCRATCH_LIMIT = 1 << 16;
/** How far past the text the checks may read. */
const PADDING = 64;

/**
 * The text as one byte per UTF-16 code unit, so indices agree with the string's: ASCII as is,
 * anything else as 0xff, which no character class below admits. Byte loops run about twice as
 * fast as `charCodeAt` loops. The buffer's length is a multiple of four and at least PADDING more
 * than the text's, so `wordsOf` views all of the text and the checks that look a fixed distance
 * ahead stay inside it. (What lies past the text is left from earlier texts; every check that
 * reaches there also covers the text's last newline, which none admits.)
 */
export function codeUnits(text: string): Uint8Array {
  let bytes = scratch;
  if (bytes.length < text.length + PADDING) {
    bytes = new Uint8Array((Math.max(text.length + PADDING, 2 * bytes.length, 4096) + 3) & ~3);
    if (bytes.length <= SCRATCH_LIMIT) {
      scratch = bytes;
      scratchWords = new Int32Array(bytes.buffer);
    }
  }
  const { read, written } = encoder.encodeInto(text, bytes);
  if (read !== text.length || written !== text.length) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      bytes[i] = c < 128 ? c : 0xff;
    }
  }
  return bytes;
}

/** `bytes` (from `codeUnits`) four at a time, as little-endian words. */
export function wordsOf(bytes: Uint8Array): Int32Array {
  return bytes === scratch ? scratchWords : new Int32Array(bytes.buffer);
}

let lastStoreDir = '';
let lastStoreDirCanonical = false;
let lastStoreDirCodes: Uint8Array | undefined;

/** True when `storeDir` is absolute and already canonical (no `//`, `.`, `..`, trailing `/`). */
export function isCanonicalDir(storeDir: string): boolean {
  if (storeDir !== lastStoreDir) {
    lastStoreDir = storeDir;
    lastStoreDirCanonical = /^(?:\/(?!\.\.?(?:\/|$))[^/]+)+$/.test(storeDir);
    lastStoreDirCodes =
      lastStoreDirCanonical && /^[\x20-\x7e]*$/.test(storeDir)
        ? Uint8Array.from(storeDir, (c) => c.charCodeAt(0))
        : undefined;
  }
  return lastStoreDirCanonical;
}

/** The characters of `storeDir` when it is canonical and printable ASCII, else undefined. */
export function storeDirCodes(storeDir: string): Uint8Array | undefined {
  isCanonicalDir(storeDir);
  return lastStoreDirCodes;
}

/** Where a store path basename read from `start` ends at a newline, or -1. */
export function basenameLineEnd(bytes: Uint8Array, words: Int32Array, start: number): number {
  const nameStart = start + HASH_LENGTH + 1;
  if (bytes[nameStart - 1] !== 45 /* - */ || !isHashPartAt(words, start)) return -1;
  const end = nameEndAt(words, nameStart);
  return bytes[end] === 10 && isNameOk(bytes, nameStart, end) ? end : -1;
}

/** Where a canonical store path `<storeDir>/<basename>` read from `start` ends at a newline, or -1. */
export function storePathEnd(bytes: Uint8Array, words: Int32Array, start: number, storeDir: string): number {
  const dir = storeDirCodes(storeDir);
  if (dir === undefined || bytes[start + dir.length] !== 47 /* / */ || !hasCodesAt(bytes, start, dir))
    return -1;
  return basenameLineEnd(bytes, words, start + dir.length + 1);
}
