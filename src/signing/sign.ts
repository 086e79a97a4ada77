/**
 * Signing narinfos (nix-formats.md §5.1, §5.5): Ed25519 over the fingerprint's UTF-8 bytes.
 */
import { toBase64, utf8 } from '../internal/bytes.js';
import { nativeCrypto } from '../internal/native.js';
import { narInfoFingerprint } from '../narinfo/fingerprint.js';
import type { NarInfo } from '../narinfo/types.js';
import { type Ed25519Backend, ed25519Signer } from './ed25519.js';
import type { SecretKey } from './keys.js';

/**
 * Signs a fingerprint and returns the signature as Nix writes it, `<key name>:<base64>`.
 *
 * @example signFingerprint(narInfoFingerprint(info), key) // 'cache.example.org-1:…=='
 */
export function signFingerprint(fingerprint: string, key: SecretKey, backend?: Ed25519Backend): string {
  return `${key.name}:${toBase64(signerOf(key, backend)(utf8(fingerprint)))}`;
}

type Signer = (message: Uint8Array) => Uint8Array;

/** Each key's signer on the default back end, made once (on node:crypto, one KeyObject per key). */
const signers = new WeakMap<SecretKey, { readonly native: boolean; readonly sign: Signer }>();

function signerOf(key: SecretKey, backend: Ed25519Backend | undefined): Signer {
  if (backend !== undefined) return ed25519Signer(key.seed(), backend);
  const native = nativeCrypto() !== undefined;
  let entry = signers.get(key);
  if (entry?.native !== native) {
    entry = { native, sign: ed25519Signer(key.seed()) };
    signers.set(key, entry);
  }
  return entry.sign;
}

/**
 * Returns `info` with this key's signature added. Signing twice adds it once; signatures by other
 * keys are kept (like `nix store sign`).
 *
 * @throws {NixcacheError} BAD_NARINFO when the info cannot be fingerprinted (NarSize 0).
 * @example const signed = signNarInfo(parseNarInfo(text), key)
 */
export function signNarInfo(info: NarInfo, key: SecretKey): NarInfo {
  const sig = signFingerprint(narInfoFingerprint(info), key);
  if (info.sigs.includes(sig)) return info;
  return { ...info, sigs: [...info.sigs, sig] };
}
