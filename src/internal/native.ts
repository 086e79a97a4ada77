/**
 * Optional access to the platform's native crypto without a static `node:*` import, so that the
 * root entry bundles for browsers and edge workers. On Node (>= 20.16) `process.getBuiltinModule`
 * hands us node:crypto synchronously; elsewhere this yields undefined and callers fall back to
 * the pure-TS implementations.
 */
import type * as NodeCrypto from 'node:crypto';

type BuiltinLoader = (id: string) => unknown;

let cached: typeof NodeCrypto | null | undefined;

/** node:crypto when the platform has it, else undefined. Can be disabled for tests. */
export function nativeCrypto(): typeof NodeCrypto | undefined {
  if (cached === undefined) {
    const proc = (globalThis as { process?: { getBuiltinModule?: BuiltinLoader } }).process;
    cached = (proc?.getBuiltinModule?.('node:crypto') as typeof NodeCrypto | undefined) ?? null;
  }
  return cached ?? undefined;
}

/** Forces the pure-TS path (`false`) or restores detection (`true`); for tests and benchmarks. */
export function setNativeCryptoEnabled(enabled: boolean): void {
  cached = enabled ? undefined : null;
}

/** What nixcache takes from libsodium's Node binding (`sodium-native`). */
export interface SodiumVerifier {
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** Fills `publicKey` (32 bytes) and `secretKey` (64 bytes) from a 32-byte seed. */
  crypto_sign_seed_keypair?(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
  /** Writes the 64-byte signature of `message` by `secretKey` (64 bytes) into `signature`. */
  crypto_sign_detached?(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
}

let sodium: SodiumVerifier | null | undefined;

/**
 * libsodium through the optional package `sodium-native` (prebuilt for the common platforms),
 * loaded synchronously on first use; undefined when it is not installed, does not load, or the
 * platform has no `process.getBuiltinModule`. libsodium is the library Nix itself verifies with.
 */
export function nativeSodium(): SodiumVerifier | undefined {
  if (sodium === undefined) {
    sodium = null;
    try {
      const proc = (globalThis as { process?: { getBuiltinModule?: BuiltinLoader } }).process;
      const module = proc?.getBuiltinModule?.('node:module') as typeof import('node:module') | undefined;
      const loaded = module?.createRequire(import.meta.url)('sodium-native') as Partial<SodiumVerifier>;
      if (typeof loaded?.crypto_sign_verify_detached === 'function') sodium = loaded as SodiumVerifier;
    } catch {
      // Not installed, or its binary does not load here: the other back ends take over.
    }
  }
  return sodium ?? undefined;
}

/** Disables libsodium (`false`) or restores detection (`true`); for tests and benchmarks. */
export function setNativeSodiumEnabled(enabled: boolean): void {
  sodium = enabled ? undefined : null;
}
