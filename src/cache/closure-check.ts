/**
 * `checkClosures`: the closure holes of a binary cache (nix-formats.md §7.2), which `verify
 * --closure` reports without fixing them: narinfos whose NAR is missing or has another size than
 * FileSize, and narinfos with a reference that has no narinfo. With `paths`, only the closures of
 * those paths are walked (a missing path is a hole too); otherwise every narinfo is checked.
 */
import { NixcacheError } from '../errors.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { narUrlToKey } from '../store/layout.js';
import { parseStorePath, parseStorePathBasename } from '../store-path/store-path.js';
import { forEachLimited } from './cache-graph.js';
import { withRetry } from './retry.js';

export interface ClosureHole {
  /** The narinfo's store path (or the hash part when it could not be read). */
  readonly path: string;
  readonly problem: 'missing-path' | 'missing-reference' | 'missing-nar' | 'wrong-size-nar' | 'unreadable';
  /** The missing reference, or what is wrong. */
  readonly detail?: string;
}

export interface ClosureCheckOptions {
  /** Check the closures of these paths only (full store paths or hash parts). */
  readonly paths?: readonly string[];
  readonly parallelism?: number;
  readonly signal?: AbortSignal;
}

/**
 * Lists the closure holes of a cache.
 *
 * @throws {NixcacheError} UNSUPPORTED when listing an HTTP cache without `paths`; NETWORK/IO.
 * @example const holes = await checkClosures(store); for (const h of holes) console.log(h.problem, h.path)
 */
export async function checkClosures(
  store: BinaryCacheStore,
  options: ClosureCheckOptions = {},
): Promise<ClosureHole[]> {
  const signal = options.signal;
  const sig = signal ? { signal } : {};
  const holes: ClosureHole[] = [];
  const seen = new Set<string>();
  const present = new Map<string, boolean>();
  const hasNarInfo = async (hash: string) => {
    let known = present.get(hash);
    if (known === undefined) {
      known = await withRetry(() => store.hasNarInfo(hash, sig), { signal });
      present.set(hash, known);
    }
    return known;
  };
  const queue: string[] = [];
  const enqueue = (hash: string) => {
    if (seen.has(hash)) return;
    seen.add(hash);
    queue.push(hash);
  };
  const checkOne = async (hash: string, follow: boolean): Promise<void> => {
    let info: Awaited<ReturnType<BinaryCacheStore['getNarInfo']>>;
    try {
      info = await withRetry(() => store.getNarInfo(hash, sig), { signal });
    } catch (e) {
      if (e instanceof NixcacheError && ['BAD_NARINFO', 'INTEGRITY', 'BAD_STORE_PATH'].includes(e.code)) {
        holes.push({ path: hash, problem: 'unreadable', detail: e.message });
        return;
      }
      throw e;
    }
    if (!info) {
      holes.push({ path: hash, problem: 'missing-path' });
      return;
    }
    const nar = await withRetry(() => store.backend.head(narUrlToKey(info.url, info.storePath).key, sig), {
      signal,
    });
    if (!nar) holes.push({ path: info.storePath, problem: 'missing-nar', detail: info.url });
    else if (info.fileSize !== undefined && nar.size !== undefined && nar.size !== info.fileSize)
      holes.push({
        path: info.storePath,
        problem: 'wrong-size-nar',
        detail: `${info.url} has ${nar.size} bytes, FileSize ${info.fileSize}`,
      });
    for (const ref of info.references) {
      const r = parseStorePathBasename(ref, store.storeDir).hash;
      if (r === hash) continue;
      if (follow) enqueue(r);
      else if (!(await hasNarInfo(r)))
        holes.push({
          path: info.storePath,
          problem: 'missing-reference',
          detail: `${store.storeDir}/${ref}`,
        });
    }
  };
  if (options.paths) {
    for (const p of options.paths)
      enqueue(p.startsWith('/') ? parseStorePath(p, store.storeDir).hash : p.slice(0, 32));
    // Breadth-first over the closures; a reference without a narinfo shows as missing-path.
    while (queue.length) {
      const batch = queue.splice(0, queue.length);
      await forEachLimited(batch, options.parallelism ?? 16, (h) => checkOne(h, true));
    }
  } else {
    await forEachLimited(store.listNarInfos(sig), options.parallelism ?? 16, (h) => checkOne(h, false));
  }
  return holes;
}
