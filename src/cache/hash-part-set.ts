/**
 * A compact set of store-path hash parts for whole-cache bookkeeping (resume logs, gc mark sets):
 * each hash part is kept as its 20 decoded bytes in one open-addressing table, about 29-57 bytes
 * per member (load factor 0.35-0.7) instead of the ~100 bytes a JS string in a Set costs. A
 * million paths fit in about 40 MB and no per-member object is ever allocated.
 */
import { decodeNix32 } from '../nix32.js';

const KEY = 20;
const MIN_CAPACITY = 1024;

/** A set of 32-character nix32 hash parts. */
export class HashPartSet {
  #keys: Uint8Array;
  #used: Uint8Array;
  #capacity: number;
  #size = 0;

  constructor(expected = 0) {
    let capacity = MIN_CAPACITY;
    while (capacity * 0.7 < expected) capacity *= 2;
    this.#capacity = capacity;
    this.#keys = new Uint8Array(capacity * KEY);
    this.#used = new Uint8Array(capacity);
  }

  /** Members. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held by the table (for reports of what the set costs). */
  get byteLength(): number {
    return this.#keys.byteLength + this.#used.byteLength;
  }

  /**
   * Adds a hash part; true when it was not there yet.
   *
   * @throws {NixcacheError} BAD_NIX32 when `hashPart` is not 32 nix32 characters.
   * @example set.add('syd87l2rxw8cbsxmxl853h0r6pdwhwjr')
   */
  add(hashPart: string): boolean {
    const key = decodeNix32(hashPart, KEY);
    if (this.#size + 1 > this.#capacity * 0.7) this.#grow();
    const slot = this.#find(key, this.#keys, this.#used, this.#capacity);
    if (this.#used[slot]) return false;
    this.#used[slot] = 1;
    this.#keys.set(key, slot * KEY);
    this.#size++;
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
      key = decodeNix32(hashPart, KEY);
    } catch {
      return false;
    }
    return this.#used[this.#find(key, this.#keys, this.#used, this.#capacity)] === 1;
  }

  /** The slot holding `key`, or the empty slot where it would go (linear probing). */
  #find(key: Uint8Array, keys: Uint8Array, used: Uint8Array, capacity: number): number {
    const mask = capacity - 1;
    // Hash parts are uniformly random: their first four bytes are a good hash already.
    let slot = (key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24)) & mask;
    for (;;) {
      if (!used[slot]) return slot;
      const at = slot * KEY;
      let same = true;
      for (let i = 0; i < KEY; i++) {
        if (keys[at + i] !== key[i]) {
          same = false;
          break;
        }
      }
      if (same) return slot;
      slot = (slot + 1) & mask;
    }
  }

  #grow(): void {
    const capacity = this.#capacity * 2;
    const keys = new Uint8Array(capacity * KEY);
    const used = new Uint8Array(capacity);
    for (let slot = 0; slot < this.#capacity; slot++) {
      if (!this.#used[slot]) continue;
      const key = this.#keys.subarray(slot * KEY, slot * KEY + KEY);
      const target = this.#find(key, keys, used, capacity);
      used[target] = 1;
      keys.set(key, target * KEY);
    }
    this.#capacity = capacity;
    this.#keys = keys;
    this.#used = used;
  }
}
