/**
 * The order of publishing a set of paths into a cache, shared by push and copy (nix-formats.md
 * §7.2): every path is prepared (NAR staged and uploaded) with bounded parallelism, and its
 * narinfo is written only once the narinfos of all its references are in the cache. Paths the
 * cache already has are skipped, and so is their closure (the cache's invariant covers it).
 */
import { NixcacheError } from '../errors.js';
import type { NarInfo } from '../narinfo/types.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { formatStorePath, parseStorePathBasename, type StorePath } from '../store-path/store-path.js';
import { createLimit } from './limit.js';
import { writeNarInfo } from './publish.js';
import { withRetry } from './retry.js';

/** A path ready to be published: its narinfo (NAR already uploaded) and its references. */
export interface PreparedPath {
  readonly info: NarInfo;
  /** Basenames, including the path itself when it refers to itself. */
  readonly references: readonly string[];
}

export interface GraphOptions {
  /** Follow references (default true); otherwise each must already be in the cache. */
  readonly closure?: boolean;
  readonly parallelism?: number;
  /** Publish even what the cache already has. */
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  readonly onSkip?: (path: string) => void;
  readonly onDone?: (path: string) => void;
  readonly onFailed?: (path: string, error: Error) => void;
}

export interface GraphResult {
  /** In the order their narinfos were written. */
  readonly pushed: readonly string[];
  readonly skipped: readonly string[];
  readonly failed: readonly { readonly path: string; readonly error: Error }[];
}

/** The last component of a store path (`/nix/store/<hash>-<name>/` → `<hash>-<name>`); basenames pass through. */
export function basenameOf(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * Publishes `roots` (full store paths or basenames) and, with `closure`, everything they refer to.
 * `prepare` stages and uploads one path's NAR and returns its narinfo.
 */
export async function publishGraph(
  store: BinaryCacheStore,
  roots: readonly string[],
  prepare: (sp: StorePath) => Promise<PreparedPath>,
  options: GraphOptions = {},
): Promise<GraphResult> {
  const signal = options.signal;
  const closure = options.closure ?? true;
  const limit = createLimit(options.parallelism ?? 2);
  const pushed: string[] = [];
  const skipped: string[] = [];
  const failed: { path: string; error: Error }[] = [];
  const tasks = new Map<string, Promise<void>>();
  const storeDir = store.storeDir;

  const inCache = (hash: string) => withRetry(() => store.hasNarInfo(hash, { signal }), { signal });

  const publish = async (sp: StorePath): Promise<void> => {
    const full = formatStorePath(sp);
    if (!options.force && (await inCache(sp.hash))) {
      skipped.push(full);
      options.onSkip?.(full);
      return;
    }
    const { info, references } = await limit(() => prepare(sp));
    const own = `${sp.hash}-${sp.name}`;
    await Promise.all(
      references
        .filter((r) => r !== own)
        .map(async (r) => {
          if (closure) {
            try {
              await schedule(r);
            } catch (e) {
              throw new NixcacheError(
                'NOT_FOUND',
                `${full}: its reference ${storeDir}/${r} could not be published`,
                {
                  path: full,
                },
                { cause: e },
              );
            }
          } else if (!(await inCache(parseStorePathBasename(r, storeDir).hash))) {
            throw new NixcacheError(
              'NOT_FOUND',
              `cannot add ${full} to ${store.location}: its reference ${storeDir}/${r} is not in the cache (publish the closure)`,
              { path: full },
            );
          }
        }),
    );
    signal?.throwIfAborted();
    await writeNarInfo(store, info, signal);
    pushed.push(full);
    options.onDone?.(full);
  };

  const schedule = (basename: string): Promise<void> => {
    const sp = parseStorePathBasename(basename, storeDir);
    let task = tasks.get(sp.hash);
    if (!task) {
      task = publish(sp).catch((error: Error) => {
        const full = formatStorePath(sp);
        failed.push({ path: full, error });
        options.onFailed?.(full, error);
        throw error;
      });
      task.catch(() => {});
      tasks.set(sp.hash, task);
    }
    return task;
  };

  const basenames = roots.map(basenameOf);
  for (const r of basenames) parseStorePathBasename(r, storeDir);
  await Promise.allSettled(basenames.map(schedule));
  return { pushed, skipped, failed };
}
