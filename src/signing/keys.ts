/**
 * Signing keys in Nix's text formats (nix-formats.md §5.2): secret `<name>:<base64(seed ‖ pk)>`,
 * public `<name>:<base64(pk)>`. Secret keys never reveal themselves in JSON, inspection or errors.
 */
import { NixcacheError } from '../errors.js';
import { bytesEqual, fromBase64Lenient, toBase64 } from '../internal/bytes.js';
import { ed25519PublicKey, randomSeed } from './ed25519.js';

/** A public key: the name signatures carry and the 32 key bytes. */
export interface PublicKey {
  readonly name: string;
  readonly key: Uint8Array;
}

const REDACTED = '[redacted]';
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * A secret signing key. The seed is held in a private field: `JSON.stringify`, `util.inspect`
 * and `String()` show only the name and public key.
 */
export class SecretKey {
  readonly name: string;
  readonly publicKey: PublicKey;
  readonly #seed: Uint8Array;

  /** Use `generateSecretKey` or `parseSecretKey`; this checks nothing. */
  constructor(name: string, seed: Uint8Array, publicKey: Uint8Array) {
    this.name = name;
    this.#seed = seed;
    this.publicKey = Object.freeze({ name, key: publicKey });
  }

  /** The 32-byte seed. Handle with care. */
  seed(): Uint8Array {
    return this.#seed.slice();
  }

  toJSON(): { name: string; publicKey: string; secret: string } {
    return { name: this.name, publicKey: formatPublicKey(this.publicKey), secret: REDACTED };
  }

  toString(): string {
    return `SecretKey(${this.name}, ${REDACTED})`;
  }

  [INSPECT](): string {
    return this.toString();
  }
}

function checkName(name: string, what: string): void {
  if (name.length === 0) throw new NixcacheError('BAD_KEY', `${what} has an empty name`);
  if (/\s/.test(name))
    throw new NixcacheError('BAD_KEY', `${what} name contains whitespace`, { field: 'name' });
  // The name ends at the first ':' when the key is read back, so a ':' in it makes a key that
  // neither Nix nor nixcache can parse.
  if (name.includes(':'))
    throw new NixcacheError('BAD_KEY', `${what} name ${JSON.stringify(name)} contains ':'`, {
      field: 'name',
    });
}

/** Splits `<name>:<base64>` and decodes the base64 leniently, as Nix does. */
function splitKey(text: string, what: string): { name: string; bytes: Uint8Array } {
  const colon = text.indexOf(':');
  if (colon < 0) throw new NixcacheError('BAD_KEY', `${what} is not of the form <name>:<base64>`);
  const name = text.slice(0, colon);
  checkName(name, what);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Lenient(text.slice(colon + 1));
  } catch (e) {
    // The message names the bad character's position only, never the key material.
    throw new NixcacheError('BAD_KEY', `${what} ${JSON.stringify(name)} is not valid base64`, {
      offset: (e as NixcacheError).data?.offset,
    });
  }
  return { name, bytes };
}

/**
 * Generates a new secret key with a random seed (the platform's CSPRNG).
 *
 * @throws {NixcacheError} BAD_KEY for an empty name or one with whitespace or a ':'.
 * @example const key = generateSecretKey('cache.example.org-1')
 */
export function generateSecretKey(name: string): SecretKey {
  checkName(name, 'secret key');
  const seed = randomSeed();
  return new SecretKey(name, seed, ed25519PublicKey(seed));
}

/**
 * Parses a secret key file's contents (a trailing newline is fine). Rejects a key whose public
 * half does not match its seed: Nix would sign with the embedded half and produce signatures
 * nobody can verify.
 *
 * @throws {NixcacheError} BAD_KEY (the message never contains key material).
 * @example parseSecretKey(readFileSync('cache.secret', 'utf8'))
 */
export function parseSecretKey(text: string): SecretKey {
  const { name, bytes } = splitKey(text, 'secret key');
  if (bytes.length !== 64) {
    throw new NixcacheError(
      'BAD_KEY',
      `secret key ${JSON.stringify(name)} has ${bytes.length} bytes, expected 64`,
    );
  }
  const seed = bytes.slice(0, 32);
  const publicKey = ed25519PublicKey(seed);
  if (!bytesEqual(publicKey, bytes.subarray(32))) {
    throw new NixcacheError(
      'BAD_KEY',
      `secret key ${JSON.stringify(name)}: its public half does not match its seed`,
    );
  }
  return new SecretKey(name, seed, publicKey);
}

/**
 * Parses a public key `<name>:<base64 of 32 bytes>`.
 *
 * @throws {NixcacheError} BAD_KEY
 * @example parsePublicKey('cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=')
 */
export function parsePublicKey(text: string): PublicKey {
  const { name, bytes } = splitKey(text.trim(), 'public key');
  if (bytes.length !== 32) {
    throw new NixcacheError(
      'BAD_KEY',
      `public key ${JSON.stringify(name)} has ${bytes.length} bytes, expected 32`,
    );
  }
  return { name, key: bytes };
}

/**
 * Renders a secret key in Nix's format (what `nix key generate-secret` prints).
 *
 * @example writeFileSync('cache.secret', formatSecretKey(key), { mode: 0o600 })
 */
export function formatSecretKey(key: SecretKey): string {
  const bytes = new Uint8Array(64);
  bytes.set(key.seed());
  bytes.set(key.publicKey.key, 32);
  return `${key.name}:${toBase64(bytes)}`;
}

/**
 * Renders a public key in Nix's format.
 *
 * @example formatPublicKey(toPublicKey(key)) // 'cache.example.org-1:…='
 */
export function formatPublicKey(key: PublicKey): string {
  return `${key.name}:${toBase64(key.key)}`;
}

/**
 * The public half of a secret key (`nix key convert-secret-to-public`).
 *
 * @example formatPublicKey(toPublicKey(parseSecretKey(text)))
 */
export function toPublicKey(key: SecretKey): PublicKey {
  return key.publicKey;
}
