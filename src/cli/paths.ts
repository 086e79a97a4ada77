/**
 * Store paths named on the command line: full store paths, `<hash>-<name>` basenames, bare hash
 * parts, or symlinks into a store such as `./result`, all turned into full paths in the cache's
 * store dir. Every command that takes paths resolves them here, so they all accept the same forms.
 */
import { readdir, realpath } from 'node:fs/promises';
import { basenameOf } from '../cache/graph.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { isHashPart, parseStorePathBasename } from '../store-path/store-path.js';
import { UsageError } from './context.js';

/** Finds the full store path of a bare hash part, or undefined. */
export type HashLookup = (hashPart: string) => Promise<string | undefined>;

/** Looks a hash part up in a cache (its narinfo names the path). */
export function lookupInCache(store: BinaryCacheStore, signal?: AbortSignal): HashLookup {
  return async (hash) =>
    (await store.getNarInfo(hash, signal ? { signal } : {}).catch(() => undefined))?.storePath;
}

/** Looks a hash part up in a local store directory (`<dir>/<hash>-<name>`). */
export function lookupInDirectory(dir: string, storeDir: string): HashLookup {
  let names: Promise<string[]> | undefined;
  return async (hash) => {
    names ??= readdir(dir).catch(() => []);
    const base = (await names).find((n) => n.startsWith(`${hash}-`) && parses(n, storeDir));
    return base === undefined ? undefined : `${storeDir}/${base}`;
  };
}

function parses(base: string, storeDir: string): boolean {
  try {
    parseStorePathBasename(base, storeDir);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves command-line path arguments to full store paths under `storeDir`.
 *
 * @throws {UsageError} for an argument that is not a store path and does not resolve to one.
 */
export async function resolveStorePaths(
  args: readonly string[],
  storeDir: string,
  command: string,
  lookup?: HashLookup,
): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (lookup && isHashPart(arg)) {
      const full = await lookup(arg);
      if (full === undefined)
        throw new UsageError(`no store path with hash part '${arg}' was found`, command);
      out.push(full);
      continue;
    }
    let base = basenameOf(arg);
    if (!parses(base, storeDir)) {
      const real = await realpath(arg).catch(() => undefined);
      const resolved = real === undefined ? undefined : basenameOf(real);
      if (resolved === undefined || !parses(resolved, storeDir)) {
        throw new UsageError(
          `'${arg}' is not a store path (expected ${storeDir}/<hash>-<name>, <hash>-<name>, a hash part, or a link to a store path such as ./result)`,
          command,
        );
      }
      base = resolved;
    }
    out.push(`${storeDir}/${base}`);
  }
  return out;
}
