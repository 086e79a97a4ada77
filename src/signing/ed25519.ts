/**
 * Ed25519 (PureEdDSA, no pre-hash) with libsodium's acceptance rules, which is what Nix uses
 * (nix-formats.md §5.2-5.3). Three interchangeable back ends: libsodium itself through the
 * optional `sodium-native` package (the synchronous verifier and signer of choice: 68 µs a check
 * here against 130 µs for OpenSSL, and about 30 µs a signature against 63 µs), node:crypto when
 * the platform has it (about 10x faster than pure TS, and the asynchronous path on libuv's thread
 * pool), and @noble/ed25519 everywhere. The only importer of @noble/ed25519.
 *
 * libsodium rejects, before the curve arithmetic, a non-canonical scalar S, a small-order R, and a
 * non-canonical or small-order public key. OpenSSL and noble differ on some of these, so both
 * back ends apply the same pre-checks here and then agree with Nix on every input.
 */

import type * as NodeCrypto from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesEqual, toHex } from '../internal/bytes.js';
import { nativeCrypto, nativeSodium, type SodiumVerifier } from '../internal/native.js';

/**
 * `sodium`: libsodium (`sodium-native`); `native`: node:crypto (OpenSSL); `pure`: TypeScript.
 * Unset, verification and signing take the first available of sodium, native and pure (all
 * three sign identically: Ed25519 signatures are deterministic).
 */
export type Ed25519Backend = 'sodium' | 'native' | 'pure';

/** The group order L, little-endian. */
const ORDER_L = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

/** Encodings (sign bit cleared) of the points of order 1, 2, 4 and 8, canonical or not. */
const SMALL_ORDER_ENCODINGS: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Uint8Array.from({ length: 32 }, (_, i) => Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16)));

/** True when the 32-byte encoding is one of a point of small order (sign bit ignored). */
export function hasSmallOrder(encoding: Uint8Array): boolean {
  next: for (const small of SMALL_ORDER_ENCODINGS) {
    for (let i = 0; i < 31; i++) if (encoding[i] !== small[i]) continue next;
    if ((encoding[31]! & 0x7f) === small[31]) return true;
  }
  return false;
}

/** True when the y coordinate is reduced (< 2^255 - 19). */
function isCanonicalPoint(encoding: Uint8Array): boolean {
  if ((encoding[31]! & 0x7f) !== 0x7f) return true;
  for (let i = 30; i > 0; i--) if (encoding[i] !== 0xff) return true;
  return encoding[0]! < 0xed;
}

/** True when the scalar S (little-endian) is below the group order. */
function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! < ORDER_L[i]!) return true;
    if (s[i]! > ORDER_L[i]!) return false;
  }
  return false;
}

/** libsodium's pre-checks of a signature: a canonical S and an R not of small order. */
function passesSignatureChecks(signature: Uint8Array): boolean {
  return (
    signature.length === 64 &&
    isCanonicalScalar(signature.subarray(32)) &&
    !hasSmallOrder(signature.subarray(0, 32))
  );
}

/** libsodium's pre-checks; true when the (signature, key) pair may go on to curve verification. */
function passesSodiumChecks(signature: Uint8Array, publicKey: Uint8Array): boolean {
  return (
    publicKey.length === 32 &&
    passesSignatureChecks(signature) &&
    isCanonicalPoint(publicKey) &&
    !hasSmallOrder(publicKey)
  );
}

function useNoble(): typeof ed {
  if (!ed.hashes.sha512) ed.hashes.sha512 = sha512;
  return ed;
}

// DER prefixes that wrap a raw Ed25519 seed (PKCS#8) and public key (SPKI) for node:crypto.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
const MAX_CACHED_KEYS = 1024;

/** A public key ready for node:crypto, or undefined when libsodium's key checks reject it. */
interface NativeKey {
  readonly bytes: Uint8Array;
  readonly key: NodeCrypto.KeyObject | undefined;
}

// By the caller's key array (a keyring's keys are reused for every narinfo), then by content.
const keysByArray = new WeakMap<Uint8Array, NativeKey>();
const keysByHex = new Map<string, NativeKey>();

function withPrefix(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix);
  out.set(key, prefix.length);
  return out;
}

/** The KeyObject of a 32-byte public key, made once per key; undefined for a key libsodium rejects. */
function nativePublicKey(crypto: typeof NodeCrypto, publicKey: Uint8Array): NodeCrypto.KeyObject | undefined {
  let entry = keysByArray.get(publicKey);
  // The array may have been changed in place since; then it is looked up by content.
  if (entry && bytesEqual(entry.bytes, publicKey)) return entry.key;
  const id = toHex(publicKey);
  entry = keysByHex.get(id);
  if (!entry) {
    if (keysByHex.size >= MAX_CACHED_KEYS) keysByHex.clear();
    const usable = publicKey.length === 32 && isCanonicalPoint(publicKey) && !hasSmallOrder(publicKey);
    entry = {
      bytes: publicKey.slice(),
      key: usable
        ? crypto.createPublicKey({
            key: withPrefix(SPKI_PREFIX, publicKey) as Buffer,
            format: 'der',
            type: 'spki',
          })
        : undefined,
    };
    keysByHex.set(id, entry);
  }
  keysByArray.set(publicKey, entry);
  return entry.key;
}

function nativePrivateKey(crypto: typeof NodeCrypto, seed: Uint8Array): NodeCrypto.KeyObject {
  return crypto.createPrivateKey({
    key: withPrefix(PKCS8_PREFIX, seed) as Buffer,
    format: 'der',
    type: 'pkcs8',
  });
}

function pickBackend(backend: Ed25519Backend | undefined): typeof NodeCrypto | undefined {
  if (backend === 'pure') return undefined;
  if (backend === 'sodium') throw new Error('libsodium (sodium-native) is not a node:crypto back end');
  const crypto = nativeCrypto();
  if (backend === 'native' && !crypto) throw new Error('native Ed25519 is not available on this platform');
  return crypto;
}

/** Derives the 32-byte public key from a 32-byte seed. */
export function ed25519PublicKey(seed: Uint8Array, backend?: Ed25519Backend): Uint8Array {
  if (backend === 'sodium') {
    const sodium = sodiumSigner();
    if (!sodium) throw new Error('libsodium (sodium-native) is not available here');
    const publicKey = new Uint8Array(32);
    sodium.crypto_sign_seed_keypair(publicKey, new Uint8Array(64), seed);
    return publicKey;
  }
  const crypto = pickBackend(backend);
  if (crypto) {
    const spki = crypto
      .createPublicKey(nativePrivateKey(crypto, seed))
      .export({ format: 'der', type: 'spki' });
    return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
  }
  return useNoble().getPublicKey(seed);
}

/**
 * A signing function for one 32-byte seed, on `backend` or else the default one
 * ({@link defaultSignBackend}): libsodium's expanded key, or node:crypto's private KeyObject, is
 * made once rather than per signature. Deterministic, identical on every back end.
 *
 * @example const sign = ed25519Signer(seed); const sig = sign(message)
 */
export function ed25519Signer(
  seed: Uint8Array,
  backend?: Ed25519Backend,
): (message: Uint8Array) => Uint8Array {
  const chosen = backend ?? defaultSignBackend();
  if (chosen === 'sodium') {
    const sodium = sodiumSigner();
    if (!sodium) throw new Error('libsodium (sodium-native) is not available here');
    const secretKey = new Uint8Array(64);
    sodium.crypto_sign_seed_keypair(new Uint8Array(32), secretKey, seed);
    return (message) => {
      const signature = new Uint8Array(64);
      sodium.crypto_sign_detached(signature, message, secretKey);
      return signature;
    };
  }
  const crypto = pickBackend(chosen);
  if (crypto) {
    const key = nativePrivateKey(crypto, seed);
    return (message) => new Uint8Array(crypto.sign(null, message, key));
  }
  const own = seed.slice();
  return (message) => useNoble().sign(message, own);
}

/** libsodium's signing functions, when sodium-native is there and has them. */
function sodiumSigner():
  | Required<Pick<SodiumVerifier, 'crypto_sign_seed_keypair' | 'crypto_sign_detached'>>
  | undefined {
  const sodium = nativeSodium();
  return sodium?.crypto_sign_seed_keypair && sodium.crypto_sign_detached
    ? (sodium as Required<SodiumVerifier>)
    : undefined;
}

/** The back end `ed25519Signer(seed)` signs with: the first available of sodium, native and pure. */
export function defaultSignBackend(): Ed25519Backend {
  return sodiumSigner() ? 'sodium' : nativeCrypto() ? 'native' : 'pure';
}

/** Signs `message` with the 32-byte `seed`; deterministic, identical on every back end. */
export function ed25519Sign(seed: Uint8Array, message: Uint8Array, backend?: Ed25519Backend): Uint8Array {
  return ed25519Signer(seed, backend)(message);
}

/** Verifies with libsodium's rules; never throws on malformed input, just returns false. */
export function ed25519Verify(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  backend?: Ed25519Backend,
): boolean {
  if (backend === undefined || backend === 'sodium') {
    const sodium = nativeSodium();
    if (sodium) {
      // libsodium applies these rules itself; they are checked here too so that every back end
      // rejects exactly the same inputs, whatever libsodium version is installed.
      try {
        return (
          passesSodiumChecks(signature, publicKey) &&
          sodium.crypto_sign_verify_detached(signature, message, publicKey)
        );
      } catch {
        return false;
      }
    }
    if (backend === 'sodium') throw new Error('libsodium (sodium-native) is not available here');
  }
  const crypto = pickBackend(backend);
  try {
    if (crypto) {
      // The key's own checks are made once, when its KeyObject is made.
      const key = nativePublicKey(crypto, publicKey);
      return (
        key !== undefined && passesSignatureChecks(signature) && crypto.verify(null, message, key, signature)
      );
    }
    if (!passesSodiumChecks(signature, publicKey)) return false;
    return useNoble().verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** 32 random bytes from the platform's CSPRNG. */
export function randomSeed(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

type Subtle = {
  importKey(
    format: 'raw',
    key: Uint8Array,
    algorithm: { name: 'Ed25519' },
    extractable: boolean,
    usages: string[],
  ): Promise<unknown>;
  verify(
    algorithm: { name: 'Ed25519' },
    key: unknown,
    signature: Uint8Array,
    data: Uint8Array,
  ): Promise<boolean>;
};

function webCryptoSubtle(): Subtle | undefined {
  return (globalThis.crypto as unknown as { subtle?: Subtle } | undefined)?.subtle;
}

const webKeys = new Map<string, Promise<unknown>>();

/** How many thread-pool verifications may be queued at once; see `setNativeVerifyConcurrency`. */
let nativeLimit: number | undefined;
let nativeInFlight = 0;
const nativeWaiting: (() => void)[] = [];
let nativeWaitingHead = 0;

function defaultNativeLimit(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const pool = Number(env?.UV_THREADPOOL_SIZE);
  // Two per pool thread keeps every thread busy while the main thread handles completions.
  return 2 * (Number.isInteger(pool) && pool > 0 ? Math.min(pool, 1024) : 4);
}

/**
 * Sets how many asynchronous native verifications may be on libuv's thread pool at once (the
 * rest wait in a queue in this process). The default is twice `UV_THREADPOOL_SIZE` (4 when
 * unset), so that file reads and other pool work still get their turn. `undefined` restores it.
 *
 * @example setNativeVerifyConcurrency(16)
 */
export function setNativeVerifyConcurrency(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
    throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  }
  nativeLimit = limit;
}

function releaseNativeSlot(): void {
  nativeInFlight--;
  if (nativeWaitingHead < nativeWaiting.length) {
    const next = nativeWaiting[nativeWaitingHead]!;
    nativeWaiting[nativeWaitingHead++] = undefined as unknown as () => void;
    if (nativeWaitingHead === nativeWaiting.length) {
      nativeWaiting.length = 0;
      nativeWaitingHead = 0;
    }
    next();
  }
}

/** node:crypto's callback form of verify, which runs on libuv's thread pool. */
function verifyOnThreadPool(
  crypto: typeof NodeCrypto,
  key: NodeCrypto.KeyObject,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  return new Promise((resolve) => {
    const start = (): void => {
      nativeInFlight++;
      try {
        crypto.verify(null, message, key, signature, (error, ok) => {
          releaseNativeSlot();
          resolve(!error && ok);
        });
      } catch {
        releaseNativeSlot();
        resolve(false);
      }
    };
    nativeLimit ??= defaultNativeLimit();
    if (nativeInFlight < nativeLimit) start();
    else nativeWaiting.push(start);
  });
}

/**
 * Verification off the main thread where the platform allows it: node:crypto's asynchronous
 * verify on libuv's thread pool under Node, WebCrypto in browsers and edge workers, the pure-TS
 * path elsewhere. Same rules and results as `ed25519Verify`; many calls may be pending at once.
 *
 * @example await Promise.all(sigs.map((s) => ed25519VerifyAsync(pk, message, s)))
 */
export async function ed25519VerifyAsync(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  backend?: Ed25519Backend | 'webcrypto',
): Promise<boolean> {
  if (backend === 'pure' || backend === 'sodium')
    return ed25519Verify(publicKey, message, signature, backend);
  const crypto = backend === 'webcrypto' ? undefined : pickBackend(backend);
  if (crypto) {
    let key: NodeCrypto.KeyObject | undefined;
    try {
      key = nativePublicKey(crypto, publicKey);
    } catch {
      return false;
    }
    if (key === undefined || !passesSignatureChecks(signature)) return false;
    return verifyOnThreadPool(crypto, key, message, signature);
  }
  if (!passesSodiumChecks(signature, publicKey)) return false;
  const subtle = webCryptoSubtle();
  try {
    if (!subtle) throw new Error('no WebCrypto');
    const id = toHex(publicKey);
    let key = webKeys.get(id);
    if (!key) {
      if (webKeys.size >= MAX_CACHED_KEYS) webKeys.clear();
      key = subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
      webKeys.set(id, key);
    }
    return await subtle.verify({ name: 'Ed25519' }, await key, signature, message);
  } catch {
    if (backend === 'webcrypto') return false;
    return ed25519Verify(publicKey, message, signature, 'pure');
  }
}
