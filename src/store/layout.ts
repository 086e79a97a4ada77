/**
 * Where things live in a binary cache and how they are labelled (nix-formats.md §7.1, §11): the
 * keys of narinfos, NARs and listings, the Content-Types Nix sets, and the check that a narinfo's
 * `URL` stays inside the cache.
 */

import { narFileExtension } from '../compression/registry.js';
import { NixcacheError } from '../errors.js';
import type { CompressionMethod } from '../narinfo/types.js';
import { encodeNix32 } from '../nix32.js';
import { isHashPart } from '../store-path/store-path.js';

export const CACHE_INFO_KEY = 'nix-cache-info';

export const CONTENT_TYPES = {
  narinfo: 'text/x-nix-narinfo',
  nar: 'application/x-nix-nar',
  cacheInfo: 'text/x-nix-cache-info',
  listing: 'application/json',
  log: 'text/plain; charset=utf-8',
  other: 'application/octet-stream',
} as const;

/** The Content-Type Nix gives a key of this shape. */
export function contentTypeFor(key: string): string {
  if (key === CACHE_INFO_KEY) return CONTENT_TYPES.cacheInfo;
  if (key.endsWith('.narinfo')) return CONTENT_TYPES.narinfo;
  if (key.startsWith('nar/')) return CONTENT_TYPES.nar;
  if (key.endsWith('.ls') || key.startsWith('debuginfo/') || key.endsWith('.doi'))
    return CONTENT_TYPES.listing;
  if (key.startsWith('log/')) return CONTENT_TYPES.log;
  return CONTENT_TYPES.other;
}

export function narInfoKey(hashPart: string): string {
  return `${hashPart}.narinfo`;
}

export function listingKey(hashPart: string): string {
  return `${hashPart}.ls`;
}

/** `nar/<nix32 FileHash>.nar<ext>`, the name Nix gives a compressed NAR. */
export function narKey(fileHashDigest: Uint8Array, compression: CompressionMethod): string {
  return `nar/${encodeNix32(fileHashDigest)}.nar${narFileExtension(compression)}`;
}

/** The hash part of a narinfo key (`<hash>.narinfo`), or undefined for other keys. */
export function hashPartOfNarInfoKey(key: string): string | undefined {
  if (key.length !== 40 || !key.endsWith('.narinfo')) return undefined;
  const hash = key.slice(0, 32);
  return isHashPart(hash) ? hash : undefined;
}

/**
 * Checks a cache key: relative, `/`-separated, no empty, `.` or `..` segments, no backslash or NUL.
 *
 * @throws {NixcacheError} BAD_ARGUMENT naming the key.
 */
export function checkKey(key: string, what = 'key'): string {
  const segments = key.split('/');
  if (
    key.length === 0 ||
    key.startsWith('/') ||
    /[\\\0]/.test(key) ||
    segments.some((s) => s === '' || s === '.' || s === '..')
  ) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `${what} ${JSON.stringify(key)} is not a relative path inside the cache`,
      {
        actual: key,
      },
    );
  }
  return key;
}

/**
 * Turns a narinfo `URL` into a cache key. Absolute URLs and any that would leave the cache are
 * rejected (nix-formats.md §11); a query (harmonia writes `nar/…?hash=…`) is returned apart.
 *
 * @throws {NixcacheError} BAD_NARINFO naming the URL.
 */
export function narUrlToKey(url: string, source = 'narinfo'): { key: string; query: string } {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(path)) {
    throw new NixcacheError(
      'BAD_NARINFO',
      `${source} (URL): absolute URL ${JSON.stringify(url)} is not allowed`,
      {
        source,
        field: 'URL',
        actual: url,
      },
    );
  }
  try {
    return { key: checkKey(path, 'URL'), query: q < 0 ? '' : url.slice(q) };
  } catch {
    throw new NixcacheError(
      'BAD_NARINFO',
      `${source} (URL): ${JSON.stringify(url)} escapes the cache or is not a plain relative path`,
      {
        source,
        field: 'URL',
        actual: url,
      },
    );
  }
}
