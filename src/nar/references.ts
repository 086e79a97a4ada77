/**
 * Reference scanning (how Nix computes a path's References, nix-formats.md §3/§4.2): which of a
 * set of candidate store-path hash parts (32 nix32 characters) occur anywhere in a byte stream,
 * usually the path's NAR. Like Nix, it looks only at 32-byte windows made entirely of nix32
 * characters, skipping ahead past any byte that cannot be part of one, and matches across chunk
 * boundaries.
 */
import { NixcacheError } from '../errors.js';
import { type ByteSource, toAsyncIterable } from '../internal/iter.js';
import { NIX32_ALPHABET } from '../nix32.js';

/** Length of a store path hash part. */
const HASH_PART_LENGTH = 32;

const IS_NIX32 = new Uint8Array(256);
for (let i = 0; i < NIX32_ALPHABET.length; i++) IS_NIX32[NIX32_ALPHABET.charCodeAt(i)] = 1;

/** An incremental reference scanner: `update` with every chunk, then read `result()`. */
export interface ReferenceScanner {
  /** Scans one more chunk (chunk boundaries do not matter). Returns the scanner. */
  update(chunk: Uint8Array): ReferenceScanner;
  /** The candidates found so far. */
  result(): Set<string>;
}

/**
 * Creates a pass-through reference scanner, e.g. to scan while hashing and compressing.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when a candidate is not 32 nix32 characters.
 * @example
 * const scanner = createReferenceScanner(['7yyamamnf9p1q8gvljj5xgmjvrjj1x0q']);
 * for await (const chunk of nar) { hasher.update(chunk); scanner.update(chunk); }
 * scanner.result() // Set { ... }
 */
export function createReferenceScanner(candidateHashParts: Iterable<string>): ReferenceScanner {
  const pending = new Set<string>();
  const valid = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}$`);
  for (const c of candidateHashParts) {
    if (!valid.test(c)) {
      throw new NixcacheError('BAD_ARGUMENT', `invalid store path hash part ${JSON.stringify(c)}`, {
        actual: c,
      });
    }
    pending.add(c);
  }
  const found = new Set<string>();
  const prefixes = new Set<number>();
  for (const c of pending) {
    prefixes.add(
      ((c.charCodeAt(0) << 24) | (c.charCodeAt(1) << 16) | (c.charCodeAt(2) << 8) | c.charCodeAt(3)) >>> 0,
    );
  }
  // The last HASH_PART_LENGTH - 1 bytes seen, for windows that straddle two chunks.
  const tail = new Uint8Array(HASH_PART_LENGTH - 1);
  let tailLen = 0;
  const joint = new Uint8Array(2 * (HASH_PART_LENGTH - 1));

  const scan = (s: Uint8Array): void => {
    const end = s.length - HASH_PART_LENGTH;
    let i = 0;
    // Bytes in [i, good) are already known to be nix32 characters.
    let good = 0;
    while (i <= end) {
      // Check the window [i, i+32) from its last byte backwards; a non-nix32 byte at j means no
      // window starting at or before j can match, so jump past it.
      const windowEnd = i + HASH_PART_LENGTH;
      const lo = Math.max(good, i);
      let j = windowEnd - 1;
      while (j >= lo && IS_NIX32[s[j]!] === 1) j--;
      good = windowEnd;
      if (j >= lo) {
        i = j + 1;
        continue;
      }
      // Cheap filter on the first four characters before building a string.
      const key = ((s[i]! << 24) | (s[i + 1]! << 16) | (s[i + 2]! << 8) | s[i + 3]!) >>> 0;
      if (prefixes.has(key)) {
        const candidate = String.fromCharCode.apply(null, s.subarray(i, windowEnd) as unknown as number[]);
        if (pending.has(candidate)) {
          pending.delete(candidate);
          found.add(candidate);
        }
      }
      i++;
    }
  };

  const scanner: ReferenceScanner = {
    update(chunk) {
      if (pending.size === 0 || chunk.length === 0) return scanner;
      if (tailLen > 0) {
        const head = Math.min(chunk.length, HASH_PART_LENGTH - 1);
        joint.set(tail.subarray(0, tailLen), 0);
        joint.set(chunk.subarray(0, head), tailLen);
        scan(joint.subarray(0, tailLen + head));
      }
      scan(chunk);
      // Keep the last 31 bytes of everything seen so far.
      if (chunk.length >= tail.length) {
        tail.set(chunk.subarray(chunk.length - tail.length));
        tailLen = tail.length;
      } else {
        const keep = Math.min(tailLen, tail.length - chunk.length);
        tail.copyWithin(0, tailLen - keep, tailLen);
        tail.set(chunk, keep);
        tailLen = keep + chunk.length;
      }
      return scanner;
    },
    result: () => new Set(found),
  };
  return scanner;
}

/**
 * Finds which candidate hash parts occur in the bytes of `source` (for a store path, its NAR).
 *
 * @throws {NixcacheError} BAD_ARGUMENT when a candidate is not 32 nix32 characters.
 * @example
 * const refs = await scanReferences(dumpPath('/nix/store/…-hello'), candidates);
 */
export async function scanReferences(
  source: ByteSource,
  candidateHashParts: Iterable<string>,
): Promise<Set<string>> {
  const scanner = createReferenceScanner(candidateHashParts);
  for await (const chunk of toAsyncIterable(source)) scanner.update(chunk);
  return scanner.result();
}
