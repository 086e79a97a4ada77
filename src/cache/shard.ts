/**
 * `--shard I/N`: a stable partition of a cache's paths by hash part, so N workers (CI jobs,
 * machines) split one bucket between them with no coordinator. Shard I of N (1 ≤ I ≤ N) holds the
 * paths whose hash part, read as a number from its first six nix32 digits, is I-1 modulo N. Hash
 * parts are uniformly random, so the shards are even; the partition never changes between runs,
 * the N shards are disjoint and together cover every path.
 */
import { NixcacheError } from '../errors.js';
import { NIX32_ALPHABET } from '../nix32.js';

/** One part of a partition: `index` from 1 to `count`. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < NIX32_ALPHABET.length; i++) DIGIT[NIX32_ALPHABET.charCodeAt(i)] = i;

/**
 * Parses `I/N` (1 ≤ I ≤ N ≤ 1,000,000).
 *
 * @throws {NixcacheError} BAD_ARGUMENT naming the text when it is not of that form.
 * @example parseShard('2/8') // { index: 2, count: 8 }
 */
export function parseShard(text: string): Shard {
  const m = /^(\d{1,7})\/(\d{1,7})$/.exec(text.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || count > 1_000_000 || index < 1 || index > count) {
    throw new NixcacheError('BAD_ARGUMENT', `invalid shard '${text}': expected I/N with 1 <= I <= N`, {
      field: 'shard',
      expected: 'I/N with 1 <= I <= N <= 1000000',
      actual: text,
    });
  }
  return { index, count };
}

/**
 * The shard (1 to `count`) a hash part belongs to.
 *
 * @throws {NixcacheError} BAD_STORE_PATH when `hashPart` does not start with six nix32 digits.
 * @example shardOf('syd87l2rxw8cbsxmxl853h0r6pdwhwjr', 4) // a number from 1 to 4, always the same
 */
export function shardOf(hashPart: string, count: number): number {
  let value = 0;
  for (let i = 0; i < 6; i++) {
    const code = hashPart.charCodeAt(i);
    const digit = code < 128 ? DIGIT[code]! : -1;
    if (digit < 0) {
      throw new NixcacheError('BAD_STORE_PATH', `'${hashPart}' is not a store path hash part`, {
        actual: hashPart,
      });
    }
    value = value * 32 + digit;
  }
  return (value % count) + 1;
}

/**
 * True when `hashPart` belongs to `shard` (always true without one).
 *
 * @throws {NixcacheError} BAD_STORE_PATH for a malformed hash part.
 * @example inShard(hash, parseShard('1/2'))
 */
export function inShard(hashPart: string, shard: Shard | undefined): boolean {
  return shard === undefined || shard.count === 1 || shardOf(hashPart, shard.count) === shard.index;
}
