/**
 * `openStore(url)`: parses a Nix store URL and loads only the driver it needs (the AWS SDK is
 * imported only for s3:// URLs).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { BinaryCacheStore } from './binary-cache.js';
import { parseStoreUrl, type StoreConfig } from './url.js';

export interface OpenStoreOptions {
  /** Use this S3 client instead of building one from the URL (s3:// only). */
  readonly s3Client?: S3Client;
  /** fetch implementation for http(s):// stores. */
  readonly fetch?: typeof fetch;
  /** Extra HTTP headers for http(s):// stores (e.g. Authorization). */
  readonly headers?: Record<string, string>;
  /** Where warnings about unknown or ignored URL parameters go (default: console.warn). */
  readonly onWarning?: (message: string) => void;
  /**
   * Most bytes of a narinfo, listing or nix-cache-info, raw and decoded (default 8 MiB,
   * `DEFAULT_MAX_SMALL_OBJECT_BYTES`); larger ones fail with TOO_LARGE.
   */
  readonly maxSmallObjectBytes?: number;
  /** http(s)/s3: TCP/TLS connect limit per attempt in ms (default 15 s; s3 only, http is covered by the next). */
  readonly connectTimeoutMs?: number;
  /** http(s)/s3: limit in ms until the response to a GET/HEAD/DELETE/list starts (default 30 s, per attempt). */
  readonly firstByteTimeoutMs?: number;
}

/**
 * What another thread needs to open the same store again: the URL as given and the options that
 * can cross a thread boundary. Only stores opened from a URL string without an injected S3 client
 * or fetch have one.
 */
export interface StoreOpenSpec {
  readonly url: string;
  readonly options: Pick<
    OpenStoreOptions,
    'headers' | 'maxSmallObjectBytes' | 'connectTimeoutMs' | 'firstByteTimeoutMs'
  >;
}

const openSpecs = new WeakMap<BinaryCacheStore, StoreOpenSpec>();

/**
 * How to open `store` again in a worker thread (`openStore(spec.url, spec.options)`), or
 * undefined when it was not opened by `openStore` from a URL, or was given a client or fetch.
 *
 * @example const spec = storeOpenSpec(store); if (spec) worker.postMessage(spec)
 */
export function storeOpenSpec(store: BinaryCacheStore): StoreOpenSpec | undefined {
  return openSpecs.get(store);
}

/**
 * Opens a binary cache store from a URL as Nix spells it.
 *
 * @throws {NixcacheError} BAD_STORE_URL naming the parameter; MISSING_DEPENDENCY when the AWS SDK
 *   is not installed for an s3:// URL.
 * @example const store = await openStore('s3://nix-cache?endpoint=http://127.0.0.1:9000&region=us-east-1')
 */
export async function openStore(
  url: string | StoreConfig,
  options: OpenStoreOptions = {},
): Promise<BinaryCacheStore> {
  const store = await openConfigured(url, options);
  if (typeof url === 'string' && !options.s3Client && !options.fetch) {
    const { headers, maxSmallObjectBytes, connectTimeoutMs, firstByteTimeoutMs } = options;
    openSpecs.set(store, {
      url,
      options: {
        ...(headers && { headers: { ...headers } }),
        ...(maxSmallObjectBytes !== undefined && { maxSmallObjectBytes }),
        ...(connectTimeoutMs !== undefined && { connectTimeoutMs }),
        ...(firstByteTimeoutMs !== undefined && { firstByteTimeoutMs }),
      },
    });
  }
  return store;
}

async function openConfigured(
  url: string | StoreConfig,
  options: OpenStoreOptions,
): Promise<BinaryCacheStore> {
  const config = typeof url === 'string' ? parseStoreUrl(url) : url;
  const warn = options.onWarning ?? ((m: string) => console.warn(`nixcache: ${m}`));
  for (const w of config.warnings) warn(`${config.baseUrl}: ${w}`);
  const timeouts = {
    ...(options.connectTimeoutMs !== undefined && { connectTimeoutMs: options.connectTimeoutMs }),
    ...(options.firstByteTimeoutMs !== undefined && { firstByteTimeoutMs: options.firstByteTimeoutMs }),
  };
  const storeOptions =
    options.maxSmallObjectBytes === undefined ? {} : { maxSmallObjectBytes: options.maxSmallObjectBytes };
  switch (config.scheme) {
    case 'file': {
      const { FileBackend } = await import('./file.js');
      return new BinaryCacheStore(config, new FileBackend(config.path!), storeOptions);
    }
    case 'http':
    case 'https': {
      const { HttpBackend } = await import('./http.js');
      // `https://user:password@host` becomes an Authorization header: the URL the backend keeps
      // (and every message shows) has no credentials, and fetch refuses URLs that carry them.
      const headers = {
        ...(config.httpAuthorization && { Authorization: config.httpAuthorization() }),
        ...options.headers,
      };
      return new BinaryCacheStore(
        config,
        new HttpBackend(config.baseUrl, {
          ...(options.fetch && { fetch: options.fetch }),
          ...(Object.keys(headers).length && { headers }),
          ...timeouts,
        }),
        storeOptions,
      );
    }
    case 's3': {
      const { createS3Backend } = await import('./s3.js');
      return new BinaryCacheStore(
        config,
        await createS3Backend(config, {
          ...(options.s3Client && { client: options.s3Client }),
          onWarning: warn,
          ...timeouts,
        }),
        storeOptions,
      );
    }
  }
}
