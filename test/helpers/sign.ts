/**
 * `addSignatures` for tests that look at which paths had which outcome: collects the events of
 * `onProgress` (the library keeps only counts) into lists, as the result used to hold them.
 */
import { addSignatures, type SignOptions } from '../../src/cache/sign.js';
import type { SecretKey } from '../../src/signing/keys.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';

export interface SignLists {
  readonly signed: string[];
  readonly unchanged: string[];
  readonly missing: string[];
  readonly failed: { path: string; error: Error }[];
}

/** Runs addSignatures and returns the paths of each outcome, in completion order. */
export async function signLists(
  store: BinaryCacheStore,
  paths: readonly string[] | 'all',
  keys: readonly SecretKey[],
  options: SignOptions = {},
): Promise<SignLists> {
  const lists: SignLists = { signed: [], unchanged: [], missing: [], failed: [] };
  await addSignatures(store, paths, keys, {
    ...options,
    onProgress: async (event) => {
      if (event.status === 'failed') lists.failed.push({ path: event.path, error: event.error! });
      else lists[event.status].push(event.path);
      await options.onProgress?.(event);
    },
  });
  return lists;
}
