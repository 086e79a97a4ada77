/**
 * `rewriteNarInfo`: the read-modify-write of one narinfo that every in-place edit of a cache
 * uses (adding signatures, removing a retired key's signatures, lint --fix). The narinfo is read
 * with its version tag, edited, and written back only if it is unchanged since it was read
 * (If-Match on S3, lock file + etag on file://); on a conflict it is read again and the edit is
 * applied to what the other writer left, so no writer's change (a signature) is ever lost.
 */
import { NixcacheError } from '../errors.js';
import type { NarInfo } from '../narinfo/types.js';
import type { BinaryCacheStore, PathQuery } from '../store/binary-cache.js';
import { withRetry } from './retry.js';

/**
 * An edit of a narinfo: returns the new narinfo, or `info` itself (the same object) when there is
 * nothing to change. It may throw to refuse the edit; it may be called several times for one
 * path (once per attempt), each time on what the cache holds then.
 */
export type NarInfoEdit = (info: NarInfo) => NarInfo;

export interface RewriteOptions {
  /** Read-modify-write attempts when another writer races us (default 10). */
  readonly attempts?: number;
  readonly signal?: AbortSignal;
}

export type RewriteOutcome =
  | { readonly status: 'changed'; readonly before: NarInfo; readonly after: NarInfo }
  | { readonly status: 'unchanged'; readonly info: NarInfo }
  | { readonly status: 'missing' };

/**
 * Applies `edit` to the narinfo of `query` with a conditional write, retrying on a conflict.
 *
 * @throws {NixcacheError} CONFLICT after `attempts` lost races; whatever `edit` throws; BAD_NARINFO,
 *   NETWORK, IO from the store.
 * @example await rewriteNarInfo(store, hash, (info) => signWith(info, [key]))
 */
export async function rewriteNarInfo(
  store: BinaryCacheStore,
  query: PathQuery,
  edit: NarInfoEdit,
  options: RewriteOptions = {},
): Promise<RewriteOutcome> {
  const signal = options.signal;
  const attempts = options.attempts ?? 10;
  for (let attempt = 0; ; attempt++) {
    const current = await withRetry(() => store.getNarInfoVersioned(query, { ...(signal && { signal }) }), {
      signal,
    });
    if (!current) return { status: 'missing' };
    const after = edit(current.info);
    if (after === current.info) return { status: 'unchanged', info: current.info };
    try {
      await withRetry(
        () =>
          store.putNarInfo(after, {
            ...(signal && { signal }),
            ...(current.etag !== undefined && { ifMatch: current.etag }),
          }),
        { signal },
      );
      return { status: 'changed', before: current.info, after };
    } catch (e) {
      if (!(e instanceof NixcacheError && e.code === 'CONFLICT') || attempt + 1 >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
    }
  }
}
