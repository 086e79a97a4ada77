/**
 * Hash values in Nix's text forms (nix-formats.md §2): `algo:base16|nix32|base64` and SRI
 * `algo-base64`. The encoding of a prefixed digest is told apart by its length alone.
 */
import { NixcacheError } from '../errors.js';
import { bytesEqual, fromBase64Lenient, fromHex, toBase64, toHex } from '../internal/bytes.js';
import { decodeNix32, encodeNix32, nix32Length } from '../nix32.js';
import { HASH_SIZES, type HashAlgorithm, parseHashAlgorithm } from './algorithm.js';

/** A parsed hash: the algorithm and the raw digest bytes. */
export interface NixHash {
  readonly algorithm: HashAlgorithm;
  readonly digest: Uint8Array;
}

export type HashEncoding = 'nix32' | 'base16' | 'base64' | 'sri';

function base64Length(size: number): number {
  return Math.ceil(size / 3) * 4;
}

function badHash(text: string, reason: string, extra: Record<string, string> = {}): NixcacheError {
  return new NixcacheError('BAD_HASH', `invalid hash ${JSON.stringify(text)}: ${reason}`, {
    actual: text,
    ...extra,
  });
}

/** Decodes a digest whose encoding is told by its length (base16, nix32 or padded base64). */
function decodeDigestByLength(text: string, digestText: string, algorithm: HashAlgorithm): Uint8Array {
  const size = HASH_SIZES[algorithm];
  let digest: Uint8Array | undefined;
  if (digestText.length === size * 2) {
    digest = fromHex(digestText);
    if (!digest) throw badHash(text, 'bad base16 digest');
  } else if (digestText.length === nix32Length(size)) {
    try {
      digest = decodeNix32(digestText, size);
    } catch (e) {
      throw badHash(text, (e as Error).message);
    }
  } else if (digestText.length === base64Length(size)) {
    digest = decodeBase64Digest(text, digestText, size);
  } else {
    throw badHash(text, `wrong length for a ${algorithm} hash`, { expected: algorithm });
  }
  return digest;
}

function decodeBase64Digest(text: string, b64: string, size: number): Uint8Array {
  let digest: Uint8Array;
  try {
    digest = fromBase64Lenient(b64);
  } catch (e) {
    throw badHash(text, (e as Error).message);
  }
  if (digest.length !== size)
    throw badHash(text, `base64 digest has ${digest.length} bytes, expected ${size}`);
  return digest;
}

/**
 * Parses a hash in any of Nix's textual forms. With `algorithm`, a bare digest is accepted and a
 * prefixed one must name that algorithm.
 *
 * @throws {NixcacheError} BAD_HASH (malformed or wrong length), UNKNOWN_ALGORITHM.
 * @example parseHash('sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=')
 */
export function parseHash(text: string, algorithm?: HashAlgorithm): NixHash {
  const colon = text.indexOf(':');
  let algo: HashAlgorithm;
  let digest: Uint8Array;
  if (colon >= 0) {
    algo = parseHashAlgorithm(text.slice(0, colon));
    checkAgrees(text, algo, algorithm);
    digest = decodeDigestByLength(text, text.slice(colon + 1), algo);
  } else if (text.includes('-')) {
    const dash = text.indexOf('-');
    algo = parseHashAlgorithm(text.slice(0, dash));
    checkAgrees(text, algo, algorithm);
    digest = decodeBase64Digest(text, text.slice(dash + 1), HASH_SIZES[algo]);
  } else {
    if (algorithm === undefined) throw badHash(text, 'no algorithm prefix and none expected');
    algo = algorithm;
    digest = decodeDigestByLength(text, text, algo);
  }
  return { algorithm: algo, digest };
}

function checkAgrees(text: string, actual: HashAlgorithm, expected: HashAlgorithm | undefined): void {
  if (expected !== undefined && expected !== actual) {
    throw badHash(text, `expected a ${expected} hash, got ${actual}`, { expected, actual });
  }
}

/**
 * Renders only the digest in one encoding (no `algo:` prefix).
 */
export function formatDigest(digest: Uint8Array, encoding: Exclude<HashEncoding, 'sri'>): string {
  switch (encoding) {
    case 'nix32':
      return encodeNix32(digest);
    case 'base16':
      return toHex(digest);
    case 'base64':
      return toBase64(digest);
  }
}

/**
 * Renders a hash: `algo:<digest>` for nix32/base16/base64, `algo-<base64>` for SRI.
 *
 * @example formatHash(h, 'sri') // 'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='
 */
export function formatHash(hash: NixHash, encoding: HashEncoding = 'nix32'): string {
  if (encoding === 'sri') return `${hash.algorithm}-${toBase64(hash.digest)}`;
  return `${hash.algorithm}:${formatDigest(hash.digest, encoding)}`;
}

/** True when two hashes have the same algorithm and digest. */
export function hashEquals(a: NixHash, b: NixHash): boolean {
  return a.algorithm === b.algorithm && bytesEqual(a.digest, b.digest);
}

/**
 * Folds a digest into `size` bytes by XOR (Nix's compressHash, used for store path hash parts).
 *
 * @example compressHash(sha256digest, 20)
 */
export function compressHash(digest: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < digest.length; i++) out[i % size] = out[i % size]! ^ digest[i]!;
  return out;
}
