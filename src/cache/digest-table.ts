/**
 * A compact set of 20-byte digests with dense ids, for whole-cache operations (gc, repair) that
 * must hold one entry per path or NAR of a cache in bounded memory: store-path hash parts
 * (nix32-decoded, 20 bytes) and NAR keys (the first 20 bytes of their sha256). Open addressing
 * with linear probing over an Int32Array of ids; the digests themselves sit in one dense
 * Uint8Array in id order. Cost: 20 bytes of digest plus 4–8 bytes of slot per entry (load factor
 * ≤ 0.5), against ~100 bytes for a `Map<string, number>` keyed by the 32-character hash part.
 */

/** Length of the digests the table holds. */
export const DIGEST_BYTES = 20;

/**
 * A set of 20-byte digests, each given the next id (0, 1, 2, …) when first seen.
 *
 * @example
 * const t = new DigestTable();
 * const id = t.intern(decodeNix32(hashPart)); t.find(decodeNix32(hashPart)) === id
 */
export class DigestTable {
  #digests: Uint8Array;
  #slots: Int32Array;
  #mask: number;
  #size = 0;

  constructor(expected = 1024) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#slots = new Int32Array(cap).fill(-1);
    this.#mask = cap - 1;
    this.#digests = new Uint8Array(Math.max(16, expected) * DIGEST_BYTES);
  }

  /** Number of digests held (ids are 0 … size-1). */
  get size(): number {
    return this.#size;
  }

  /** Bytes of memory the table holds. */
  get byteLength(): number {
    return this.#digests.byteLength + this.#slots.byteLength;
  }

  /** The digest of an id (a view: copy it to keep it). */
  digestOf(id: number): Uint8Array {
    return this.#digests.subarray(id * DIGEST_BYTES, (id + 1) * DIGEST_BYTES);
  }

  /** The id of a digest, or -1. */
  find(digest: Uint8Array): number {
    let slot = hashOf(digest) & this.#mask;
    for (;;) {
      const id = this.#slots[slot]!;
      if (id < 0) return -1;
      if (this.#equals(id, digest)) return id;
      slot = (slot + 1) & this.#mask;
    }
  }

  /** The id of a digest, adding it when absent. */
  intern(digest: Uint8Array): number {
    let slot = hashOf(digest) & this.#mask;
    for (;;) {
      const id = this.#slots[slot]!;
      if (id < 0) break;
      if (this.#equals(id, digest)) return id;
      slot = (slot + 1) & this.#mask;
    }
    const id = this.#size++;
    if ((id + 1) * DIGEST_BYTES > this.#digests.length) {
      const grown = new Uint8Array(this.#digests.length * 2);
      grown.set(this.#digests);
      this.#digests = grown;
    }
    this.#digests.set(digest.subarray(0, DIGEST_BYTES), id * DIGEST_BYTES);
    this.#slots[slot] = id;
    if (this.#size * 2 > this.#slots.length) this.#rehash();
    return id;
  }

  #equals(id: number, digest: Uint8Array): boolean {
    const d = this.#digests;
    const at = id * DIGEST_BYTES;
    for (let i = 0; i < DIGEST_BYTES; i++) if (d[at + i] !== digest[i]) return false;
    return true;
  }

  #rehash(): void {
    const slots = new Int32Array(this.#slots.length * 2).fill(-1);
    const mask = slots.length - 1;
    for (let id = 0; id < this.#size; id++) {
      let slot = hashOf(this.digestOf(id)) & mask;
      while (slots[slot]! >= 0) slot = (slot + 1) & mask;
      slots[slot] = id;
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}

/** FNV-1a over the digest (hash parts made by tests are not always random in their first bytes). */
function hashOf(digest: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < DIGEST_BYTES; i++) {
    h ^= digest[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A Float64Array / Int32Array / Uint8Array that grows by doubling (new slots get `fill`).
 *
 * @example sizes = grow(sizes, id + 1)
 */
export function grow<T extends Float64Array | Int32Array | Uint8Array>(
  array: T,
  needed: number,
  fill = 0,
): T {
  if (needed <= array.length) return array;
  let cap = Math.max(16, array.length);
  while (cap < needed) cap *= 2;
  const next = new (array.constructor as new (n: number) => T)(cap);
  next.set(array);
  if (fill !== 0) next.fill(fill, array.length);
  return next;
}
