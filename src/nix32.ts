/**
 * Nix32, Nix's own base-32 (nix-formats.md §1): alphabet without e/o/u/t, the input read as a
 * little-endian integer, most significant digit first. Decoding is strict.
 */
import { NixcacheError } from './errors.js';

/** The 32 digits of Nix32, in value order. */
export const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const ALPHABET_CODES = Uint8Array.from(NIX32_ALPHABET, (c) => c.charCodeAt(0));
const DIGIT_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < NIX32_ALPHABET.length; i++) DIGIT_VALUE[NIX32_ALPHABET.charCodeAt(i)] = i;

/** Length of the Nix32 text for `byteLength` bytes: ceil(8n/5). */
export function nix32Length(byteLength: number): number {
  return Math.ceil((byteLength * 8) / 5);
}

/**
 * Encodes bytes as Nix32.
 *
 * @example encodeNix32(new Uint8Array([0x1f])) // '0z'
 */
export function encodeNix32(bytes: Uint8Array): string {
  const len = nix32Length(bytes.length);
  const codes = new Array<number>(len);
  for (let n = len - 1, k = 0; n >= 0; n--, k++) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const next = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    codes[k] = ALPHABET_CODES[((bytes[i]! >> j) | next) & 31]!;
  }
  let out = '';
  // String.fromCharCode takes its arguments on the stack: convert in slices.
  for (let at = 0; at < len; at += 8192) out += String.fromCharCode(...codes.slice(at, at + 8192));
  return out;
}

/** True when `c` is one of the 32 Nix32 digits. */
export function isNix32Char(c: string): boolean {
  const code = c.charCodeAt(0);
  return c.length === 1 && code < 128 && DIGIT_VALUE[code]! >= 0;
}

/**
 * Decodes Nix32 text. The length must be one that some byte count encodes to (or equal
 * `nix32Length(expectedBytes)` when given), every character must be a Nix32 digit and the bits
 * that would spill past the last byte must be zero.
 *
 * @throws {NixcacheError} BAD_NIX32 naming the offending character or the length.
 * @example decodeNix32('0z') // Uint8Array [0x1f]
 */
export function decodeNix32(text: string, expectedBytes?: number): Uint8Array {
  const size = expectedBytes ?? Math.floor((text.length * 5) / 8);
  if (nix32Length(size) !== text.length) {
    throw new NixcacheError(
      'BAD_NIX32',
      expectedBytes === undefined
        ? `invalid Nix32 length ${text.length}: no byte count encodes to it`
        : `invalid Nix32 length ${text.length}, expected ${nix32Length(expectedBytes)} for ${expectedBytes} bytes`,
      { actual: String(text.length) },
    );
  }
  const out = new Uint8Array(size);
  for (let n = 0; n < text.length; n++) {
    const c = text.charCodeAt(text.length - 1 - n);
    const digit = c < 128 ? DIGIT_VALUE[c]! : -1;
    if (digit < 0) {
      throw new NixcacheError(
        'BAD_NIX32',
        `invalid character ${JSON.stringify(text[text.length - 1 - n])} in Nix32 string`,
        { offset: text.length - 1 - n },
      );
    }
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] = out[i]! | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (carry !== 0) {
      if (i + 1 >= size) {
        throw new NixcacheError(
          'BAD_NIX32',
          `Nix32 string ${JSON.stringify(text)} has non-zero padding bits`,
        );
      }
      out[i + 1] = out[i + 1]! | carry;
    }
  }
  return out;
}

/**
 * Decodes the Nix32 digits `codes[start, start + nix32Length(size))` (character codes, e.g. the
 * bytes of ASCII text) into `size` bytes, without making a string. Same rules as `decodeNix32`;
 * returns undefined instead of throwing, so callers on a fast path can fall back to
 * `decodeNix32` for the error message.
 *
 * @example decodeNix32At(utf8('sha256:0z'), 7, 1) // Uint8Array [0x1f]
 */
export function decodeNix32At(codes: Uint8Array, start: number, size: number): Uint8Array | undefined {
  const length = nix32Length(size);
  if (start < 0 || start + length > codes.length) return undefined;
  const out = new Uint8Array(size);
  const last = start + length - 1;
  // Eight digits (40 bits) make five bytes: whole groups first, the rest digit by digit.
  const groups = length >> 3;
  let bad = 0;
  for (let g = 0; g < groups; g++) {
    const at = last - 8 * g;
    const d0 = DIGIT_VALUE[codes[at]!]!;
    const d1 = DIGIT_VALUE[codes[at - 1]!]!;
    const d2 = DIGIT_VALUE[codes[at - 2]!]!;
    const d3 = DIGIT_VALUE[codes[at - 3]!]!;
    const d4 = DIGIT_VALUE[codes[at - 4]!]!;
    const d5 = DIGIT_VALUE[codes[at - 5]!]!;
    const d6 = DIGIT_VALUE[codes[at - 6]!]!;
    const d7 = DIGIT_VALUE[codes[at - 7]!]!;
    bad |= d0 | d1 | d2 | d3 | d4 | d5 | d6 | d7;
    const lo = d0 | (d1 << 5) | (d2 << 10) | (d3 << 15);
    const hi = d4 | (d5 << 5) | (d6 << 10) | (d7 << 15);
    const o = 5 * g;
    out[o] = lo;
    out[o + 1] = lo >> 8;
    out[o + 2] = (lo >> 16) | (hi << 4);
    out[o + 3] = hi >> 4;
    out[o + 4] = hi >> 12;
  }
  if (bad < 0) return undefined;
  for (let n = 8 * groups; n < length; n++) {
    const digit = DIGIT_VALUE[codes[last - n]!]!;
    if (digit < 0) return undefined;
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] = out[i]! | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (carry !== 0) {
      if (i + 1 >= size) return undefined;
      out[i + 1] = out[i + 1]! | carry;
    }
  }
  return out;
}
