/**
 * `nixcache/store`: binary cache stores over file://, http(s):// and s3:// (nix-formats.md §7-§8).
 */
export type {
  DeleteManyResult,
  ListedObject,
  ListOptions,
  ObjectBody,
  ObjectInfo,
  PendingUpload,
  PutOptions,
  ReadOptions,
  StorageBackend,
} from './backend.js';
export {
  BinaryCacheStore,
  type BinaryCacheStoreOptions,
  type GetNarOptions,
  type PathQuery,
  type PutFileOptions,
} from './binary-cache.js';
export { type CacheInfo, formatCacheInfo, parseCacheInfo } from './cache-info.js';
export {
  CACHE_INFO_KEY,
  CONTENT_TYPES,
  contentTypeFor,
  listingKey,
  narInfoKey,
  narKey,
  narUrlToKey,
} from './layout.js';
export { DEFAULT_MAX_SMALL_OBJECT_BYTES } from './limits.js';
export type { NarWarning } from './nar-compression.js';
export { type OpenStoreOptions, openStore, type StoreOpenSpec, storeOpenSpec } from './open.js';
export { parseStoreUrl, type StoreConfig, type StoreScheme } from './url.js';
