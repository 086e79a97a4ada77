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
 * Candidate hash parts compiled once for many scans: validated and indexed by their first four
 * characters. A push without metadata scans every path it uploads against every entry of the
 * store (tens of thousands on a real machine): compiling them for each path cost 13 ms a path
 * at 50,000 candidates, more than scanning a small NAR.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when a candidate is not 32 nix32 characters.
 * @example
 * const candidates = new ReferenceCandidates(hashPartsOfTheStore);
 * for (const nar of nars) refs.push(await scanReferences(nar, candidates));
 */
export class ReferenceCandidates {
  readonly #hashParts = new Set<string>();
  readonly #prefixes = new Set<number>();

  constructor(candidateHashParts: Iterable<string>) {
    const valid = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}$`);
    for (const c of candidateHashParts) {
      if (!valid.test(c)) {
        throw new NixcacheError('BAD_ARGUMENT', `invalid store path hash part ${JSON.stringify(c)}`, {
          actual: c,
        });
      }
      this.#hashParts.add(c);
      this.#prefixes.add(
        ((c.charCodeAt(0) << 24) | (c.charCodeAt(1) << 16) | (c.charCodeAt(2) << 8) | c.charCodeAt(3)) >>> 0,
      );
    }
  }

  /** How many distinct candidates there are. */
  get size(): number {
    return this.#hashParts.size;
  }

  /** A new scanner for one byte stream (e.g. one NAR), sharing these compiled candidates. */
  scanner(): ReferenceScanner {
    return newScanner(this.#hashParts, this.#prefixes);
  }
}

/**
 * Creates a pass-through reference scanner, e.g. to scan while hashing and compressing. Give
 * {@link ReferenceCandidates} to scan many streams against the same candidates.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when a candidate is not 32 nix32 characters.
 * @example
 * const scanner = createReferenceScanner(['7yyamamnf9p1q8gvljj5xgmjvrjj1x0q']);
 * for await (const chunk of nar) { hasher.update(chunk); scanner.update(chunk); }
 * scanner.result() // Set { ... }
 */
export function createReferenceScanner(candidates: Iterable<string> | ReferenceCandidates): ReferenceScanner {
  return (
    candidates instanceof ReferenceCandidates ? candidates : new ReferenceCandidates(candidates)
  ).scanner();
}

function newScanner(hashParts: ReadonlySet<string>, prefixes: ReadonlySet<number>): ReferenceScanner {
  const found = new Set<string>();
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
        if (hashParts.has(candidate)) found.add(candidate);
      }
      i++;
    }
  };

  const scanner: ReferenceScanner = {
    update(chunk) {
      if (found.size === hashParts.size || chunk.length === 0) return scanner;
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
  candidates: Iterable<string> | ReferenceCandidates,
): Promise<Set<string>> {
  const scanner = createReferenceScanner(candidates);
  for await (const chunk of toAsyncIterable(source)) scanner.update(chunk);
  return scanner.result();
}
