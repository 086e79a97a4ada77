/**
 * Incremental hashing: node:crypto where the platform has it (about 12x faster for sha256 on
 * this machine), @noble/hashes everywhere else. Same results either way.
 */
import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { nativeCrypto } from '../internal/native.js';
import type { HashAlgorithm } from './algorithm.js';

/** An incremental hash: feed bytes with `update`, finish once with `digest`. */
export interface Hasher {
  update(bytes: Uint8Array): Hasher;
  digest(): Uint8Array;
}

const PURE = { md5, sha1, sha256, sha512 } as const;

/**
 * Creates an incremental hasher for `algorithm`.
 *
 * @example createHasher('sha256').update(bytes).digest()
 */
export function createHasher(algorithm: HashAlgorithm): Hasher {
  const native = nativeCrypto();
  if (native) {
    const h = native.createHash(algorithm);
    const hasher: Hasher = {
      update(bytes) {
        h.update(bytes);
        return hasher;
      },
      digest() {
        const d = h.digest();
        return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      },
    };
    return hasher;
  }
  const h = PURE[algorithm].create();
  const hasher: Hasher = {
    update(bytes) {
      h.update(bytes);
      return hasher;
    },
    digest: () => h.digest(),
  };
  return hasher;
}

/**
 * Hashes `bytes` (a string is hashed as UTF-8) in one go.
 *
 * @example hashBytes('sha256', 'abc')
 */
export function hashBytes(algorithm: HashAlgorithm, bytes: Uint8Array | string): Uint8Array {
  const input = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  return createHasher(algorithm).update(input).digest();
}
