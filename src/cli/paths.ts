/**
 * Store paths named on the command line: full store paths, `<hash>-<name>` basenames, bare hash
 * parts, or symlinks into a store such as `./result`, all turned into full paths in the cache's
 * store dir. Every command that takes paths resolves them here, so they all accept the same forms.
 */
import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
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

/** Symlinks followed at most, as the kernel's own limit. */
const MAX_LINKS = 40;

function insideStore(path: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const prefix = `${dir.replace(/\/+$/, '')}/`;
    if (path.startsWith(prefix)) return path.slice(prefix.length).split('/')[0] || undefined;
  }
  return undefined;
}

/**
 * Follows `arg` link by link, as Nix's followLinksToStorePath does, until it names something
 * inside one of `dirs` (the store dir, and the directory paths are read from); returns that store
 * path's basename (`/nix/store/<hash>-<name>/bin/x` gives `<hash>-<name>`). A chain that ends
 * outside those directories gives the last component of where it ends (the caller checks that it
 * is a store path name: a link into a store kept elsewhere); a broken chain, or one of more than
 * 40 links, gives undefined. A store path that is itself a link is not followed further.
 */
export async function followToStorePath(arg: string, dirs: readonly string[]): Promise<string | undefined> {
  let path = resolve(arg);
  for (let hop = 0; hop <= MAX_LINKS; hop++) {
    const inside = insideStore(path, dirs);
    if (inside !== undefined) return inside;
    const stat = await lstat(path).catch(() => undefined);
    if (stat === undefined) return undefined;
    if (stat.isSymbolicLink()) {
      path = resolve(dirname(path), await readlink(path));
      continue;
    }
    // Not a link itself, but a parent directory may be one (e.g. /var/run -> /run).
    const real = await realpath(path).catch(() => undefined);
    if (real === undefined) return undefined;
    // The end of the chain, outside the store dirs: its own name, which is a store path's
    // basename when the link points into a store kept elsewhere (a copy, a chroot store).
    if (real === path) return basenameOf(path);
    path = real;
  }
  return undefined;
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
  physicalDir?: string,
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
    const base = basenameOf(arg);
    if (!arg.includes('/') && parses(base, storeDir)) {
      out.push(`${storeDir}/${base}`);
      continue;
    }
    const resolved = await followToStorePath(arg, [storeDir, ...(physicalDir ? [physicalDir] : [])]);
    if (resolved === undefined || !parses(resolved, storeDir)) {
      throw new UsageError(
        `'${arg}' is not a store path (expected ${storeDir}/<hash>-<name>, <hash>-<name>, a hash part, or a link to a store path such as ./result)`,
        command,
      );
    }
    out.push(`${storeDir}/${resolved}`);
  }
  return out;
}
