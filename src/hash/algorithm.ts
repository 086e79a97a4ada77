/**
 * Hash algorithms Nix knows and their digest sizes (nix-formats.md §2).
 */
import { NixcacheError } from '../errors.js';

export type HashAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

/** Digest size in bytes of each algorithm. */
export const HASH_SIZES: Readonly<Record<HashAlgorithm, number>> = {
  md5: 16,
  sha1: 20,
  sha256: 32,
  sha512: 64,
};

export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['md5', 'sha1', 'sha256', 'sha512'];

export function isHashAlgorithm(name: string): name is HashAlgorithm {
  return Object.hasOwn(HASH_SIZES, name);
}

/**
 * @throws {NixcacheError} UNKNOWN_ALGORITHM when `name` is not md5, sha1, sha256 or sha512.
 */
export function parseHashAlgorithm(name: string): HashAlgorithm {
  if (!isHashAlgorithm(name)) {
    throw new NixcacheError('UNKNOWN_ALGORITHM', `unknown hash algorithm ${JSON.stringify(name)}`, {
      actual: name,
      expected: HASH_ALGORITHMS.join('|'),
    });
  }
  return name;
}
