/**
 * `initCache`: creates a binary cache the way the seed's MinIO walk-through does by hand: the
 * bucket (S3), `nix-cache-info` (StoreDir, WantMassQuery, Priority), and optionally anonymous
 * download (bucket policy) and expiry after N days (lifecycle rule).
 */
import { NixcacheError } from '../errors.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { type CacheInfo, formatCacheInfo, parseCacheInfo } from '../store/cache-info.js';
import { CACHE_INFO_KEY } from '../store/layout.js';
import { withRetry } from './retry.js';

/** What S3-like backends offer beyond objects. */
export interface BucketAdministration {
  ensureBucket(options?: { signal?: AbortSignal }): Promise<void>;
  setPublicRead(options?: { signal?: AbortSignal }): Promise<void>;
  setExpiry(days: number, options?: { signal?: AbortSignal }): Promise<void>;
}

export interface InitOptions {
  readonly priority?: number;
  readonly wantMassQuery?: boolean;
  /** Allow anonymous GET of the cache (S3 bucket policy). */
  readonly publicRead?: boolean;
  /** Delete objects N days after they were written (S3 lifecycle rule). */
  readonly expireDays?: number;
  readonly signal?: AbortSignal;
}

/**
 * Reads the cache's nix-cache-info and checks that it is for this store directory, as Nix does
 * when it opens a cache; undefined when the cache has none yet.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when its StoreDir is another store directory; NETWORK/IO.
 */
export async function readCacheInfo(
  store: BinaryCacheStore,
  signal?: AbortSignal,
): Promise<CacheInfo | undefined> {
  return (await readCacheInfoText(store, signal))?.info;
}

/** nix-cache-info as text and parsed, its StoreDir checked against the store's. */
async function readCacheInfoText(
  store: BinaryCacheStore,
  signal?: AbortSignal,
): Promise<{ text: string; info: CacheInfo } | undefined> {
  const bytes = await withRetry(() => store.getFile(CACHE_INFO_KEY, { ...(signal && { signal }) }), {
    signal,
  });
  if (bytes === undefined) return undefined;
  const text = new TextDecoder().decode(bytes);
  const info = parseCacheInfo(text);
  if (info.storeDir !== undefined && info.storeDir !== store.storeDir) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `binary cache ${store.location} is for Nix stores with prefix ${info.storeDir}, not ${store.storeDir}`,
      { url: store.location, field: 'StoreDir', expected: store.storeDir, actual: info.storeDir },
    );
  }
  return { text, info };
}

/**
 * Writes `StoreDir: <storeDir>` as nix-cache-info when the cache has none, as Nix does when it
 * opens a writable cache: without it Nix refuses the cache ("does not appear to be a binary
 * cache"). Push and copy call it before their first upload.
 *
 * @throws {NixcacheError} BAD_ARGUMENT for another store directory's cache; NETWORK/IO.
 */
export async function ensureCacheInfo(store: BinaryCacheStore, signal?: AbortSignal): Promise<void> {
  if (await readCacheInfo(store, signal)) return;
  const text = new TextEncoder().encode(formatCacheInfo({ storeDir: store.storeDir }));
  await withRetry(() => store.putFile(CACHE_INFO_KEY, text, { ...(signal && { signal }) }), { signal });
}

const KNOWN_KEYS = new Set(['StoreDir', 'WantMassQuery', 'Priority']);

/** The lines of a nix-cache-info other than the keys nixcache writes, kept verbatim. */
function otherLines(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !KNOWN_KEYS.has(line.slice(0, line.indexOf(':')).trim()))
    .map((line) => `${line}\n`)
    .join('');
}

function bucketAdmin(store: BinaryCacheStore): BucketAdministration | undefined {
  const b = store.backend as unknown as Partial<BucketAdministration>;
  return typeof b.ensureBucket === 'function' ? (b as BucketAdministration) : undefined;
}

/**
 * Initialises a cache; safe to run again: an existing nix-cache-info keeps the settings not
 * given here (and lines nixcache does not know), and the rules are replaced.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when the cache's nix-cache-info is for another store
 *   directory (it is not rewritten); UNSUPPORTED naming the feature when the server or store type cannot
 *   do it (e.g. a bucket policy on a file:// store or a server without PutBucketPolicy);
 *   BAD_ARGUMENT for a bad `expireDays`; NETWORK on failure.
 * @example await initCache(store, { priority: 40, wantMassQuery: true, publicRead: true })
 */
export async function initCache(store: BinaryCacheStore, options: InitOptions = {}): Promise<CacheInfo> {
  const signal = options.signal;
  const admin = bucketAdmin(store);
  if (options.expireDays !== undefined && !(Number.isInteger(options.expireDays) && options.expireDays > 0)) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `expiry must be a whole number of days > 0, got ${options.expireDays}`,
    );
  }
  if ((options.publicRead || options.expireDays !== undefined) && !admin) {
    const what = options.publicRead ? 'anonymous read (a bucket policy)' : 'expiry (a lifecycle rule)';
    throw new NixcacheError(
      'UNSUPPORTED',
      `${store.location}: ${what} can only be set on an s3:// store; configure it in the server that serves this cache`,
      { url: store.location, operation: 'init' },
    );
  }
  await admin?.ensureBucket({ ...(signal && { signal }) });
  // Run again, init changes only what it is asked to: the other settings, and lines it does
  // not know, stay as they are.
  const existing = await readCacheInfoText(store, signal);
  const wantMassQuery = options.wantMassQuery ?? existing?.info.wantMassQuery;
  const priority = options.priority ?? existing?.info.priority;
  const info: CacheInfo = {
    storeDir: store.storeDir,
    ...(wantMassQuery !== undefined && { wantMassQuery }),
    ...(priority !== undefined && { priority }),
  };
  const text = formatCacheInfo(info) + otherLines(existing?.text ?? '');
  if (text !== existing?.text) {
    const bytes = new TextEncoder().encode(text);
    await withRetry(() => store.putFile(CACHE_INFO_KEY, bytes, { ...(signal && { signal }) }), { signal });
  }
  if (options.publicRead) await admin!.setPublicRead({ ...(signal && { signal }) });
  if (options.expireDays !== undefined)
    await admin!.setExpiry(options.expireDays, { ...(signal && { signal }) });
  return info;
}
