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
