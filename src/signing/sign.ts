/**
 * Signing narinfos (nix-formats.md §5.1, §5.5): Ed25519 over the fingerprint's UTF-8 bytes.
 */
import { toBase64, utf8 } from '../internal/bytes.js';
import { narInfoFingerprint } from '../narinfo/fingerprint.js';
import type { NarInfo } from '../narinfo/types.js';
import { defaultSignBackend, type Ed25519Backend, ed25519Signer } from './ed25519.js';
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

/**
 * Each key's signer on the default back end, made once (libsodium's expanded key, or on
 * node:crypto one KeyObject per key), and made again when the default changes (tests).
 */
const signers = new WeakMap<SecretKey, { readonly backend: Ed25519Backend; readonly sign: Signer }>();

function signerOf(key: SecretKey, backend: Ed25519Backend | undefined): Signer {
  if (backend !== undefined) return ed25519Signer(key.seed(), backend);
  const current = defaultSignBackend();
  let entry = signers.get(key);
  if (entry?.backend !== current) {
    entry = { backend: current, sign: ed25519Signer(key.seed(), current) };
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
