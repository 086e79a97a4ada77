/**
 * A compact set of store-path hash parts for whole-cache bookkeeping (resume logs): each hash part
 * is kept as its 20 decoded bytes in a DigestTable (see digest-table.ts, the table gc's mark set
 * uses), about 30-60 bytes per member instead of the ~100 bytes a JS string in a Set costs, with
 * no per-member object.
 */
import { decodeNix32 } from '../nix32.js';
import { DIGEST_BYTES, DigestTable } from './digest-table.js';

/** A set of 32-character nix32 hash parts. */
export class HashPartSet {
  readonly #table: DigestTable;

  constructor(expected = 1024) {
    this.#table = new DigestTable(expected);
  }

  /** Members. */
  get size(): number {
    return this.#table.size;
  }

  /** Bytes held by the table (for reports of what the set costs). */
  get byteLength(): number {
    return this.#table.byteLength;
  }

  /**
   * Adds a hash part; true when it was not there yet.
   *
   * @throws {NixcacheError} BAD_NIX32 when `hashPart` is not 32 nix32 characters.
   * @example set.add('syd87l2rxw8cbsxmxl853h0r6pdwhwjr')
   */
  add(hashPart: string): boolean {
    const key = decodeNix32(hashPart, DIGEST_BYTES);
    if (this.#table.find(key) >= 0) return false;
    this.#table.intern(key);
    return true;
  }

  /**
   * True when the hash part is a member; false for anything that is not a hash part.
   *
   * @example set.has('syd87l2rxw8cbsxmxl853h0r6pdwhwjr')
   */
  has(hashPart: string): boolean {
    let key: Uint8Array;
    try {
      key = decodeNix32(hashPart, DIGEST_BYTES);
    } catch {
      return false;
    }
    return this.#table.find(key) >= 0;
  }
}
