/**
 * The s3:// storage driver on `@aws-sdk/client-s3` (nix-formats.md §7-§8, design.md §5); `open.ts`
 * loads it with `import('./s3.js')`. The SDK itself loads on first use (`s3-sdk.ts`): a store
 * whose requests all go direct never loads it.
 *
 * - Client (`s3-client.ts`): region (default us-east-1), path-style addressing whenever an endpoint is set,
 *   credentials from the SDK's default chain or `profile=`, and checksums only when an operation
 *   requires them: with the SDK's defaults a streamed PutObject is sent with aws-chunked framing
 *   and a CRC32 trailer, which S3-compatible servers store inside the object (measured with
 *   s3rver) or reject (R2, Garage: nix-formats.md §13).
 * - Direct requests: on an `endpoint=` store with path-style addressing, GetObject, HeadObject,
 *   ListObjectsV2 and a small body in memory (a narinfo, most NARs of a system closure) go out
 *   as one signed request of our own (`s3-direct.ts`: the SDK costs more CPU per small object
 *   than compressing it or checking its signature), with the credentials the SDK would use (and
 *   for a write Content-MD5 and a signed payload SHA-256); anything but an answer is sent again
 *   through the SDK.
 * - Writes: otherwise a single PutObject when the size is known and small enough; otherwise a
 *   multipart upload through `@aws-sdk/lib-storage` with at most 10,000 parts and a bounded
 *   number of parts in memory. A body that fails midway leaves no object under the key, and a
 *   failed multipart upload is aborted.
 * - Reads: 404 and 403 both mean absent (nix-formats.md §7.3).
 * - Bucket administration for `initCache`: create the bucket here; anonymous read (bucket policy)
 *   and expiry (lifecycle rule) live in `s3-housekeeping.ts`, with listings with metadata, batch
 *   deletes and incomplete multipart uploads (gc, repair).
 */
import type { GetObjectCommandOutput, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { NixcacheError, StoreError } from '../errors.js';
import type { ByteSource } from '../internal/iter.js';
import type {
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
import { DEFAULT_MAX_SMALL_OBJECT_BYTES } from './limits.js';
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_SOCKETS,
  directCredentials,
  type S3ClientOptions,
  s3ClientConfig,
} from './s3-client.js';
import { type DirectRead, DirectS3, directOrigin } from './s3-direct.js';
import { absent, absentAnswer, httpStatus, nextListToken, s3Code, s3Failure } from './s3-errors.js';
import {
  abortS3MultipartUpload,
  deleteS3Objects,
  listS3MultipartUploads,
  listS3Objects,
  type S3HousekeepingContext,
  type S3ListPage,
  setS3Expiry,
  setS3PublicRead,
} from './s3-housekeeping.js';
import { capSdkResponses } from './s3-limits.js';
import { putObject } from './s3-put.js';
import { loadS3Sdk, s3Sdk } from './s3-sdk.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_FIRST_BYTE_TIMEOUT_MS } from './timeouts.js';
import type { StoreConfig } from './url.js';

export {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_SOCKETS,
  type S3ClientOptions,
  s3ClientConfig,
} from './s3-client.js';
export { EXPIRY_RULE_ID, PUBLIC_READ_SID, publicReadStatement } from './s3-housekeeping.js';
export { S3_MAX_PARTS, S3_MAX_SINGLE_PUT, S3_MIN_PART_SIZE } from './s3-put.js';

/** Options of {@link S3Backend}; the client's: see {@link S3ClientOptions} (timeouts per attempt). */
export interface S3BackendOptions extends S3ClientOptions {
  /** Use this client instead of building one from the store URL (region, endpoint, profile are then the client's). */
  readonly client?: S3Client;
  /** Where non-fatal problems go (e.g. a multipart upload the server would not abort). */
  readonly onWarning?: (message: string) => void;
  /** Parts of one multipart upload in flight at once (default 2); memory ≈ (queueSize + 1) × part size. */
  readonly queueSize?: number;
  /**
   * Keys per ListObjectsV2 page (S3's MaxKeys; default the server's, 1000 on AWS). Listing
   * fetches the next page while the current one is consumed.
   */
  readonly listPageSize?: number;
  /**
   * On an `endpoint=` store with path-style addressing, send GetObject, HeadObject,
   * ListObjectsV2 and small in-memory PutObjects (up to 5 MiB) as one signed HTTP request each
   * instead of through the SDK (default true; see `s3-direct.ts`). Anything but an answer falls
   * back to the SDK for that request.
   */
  readonly directRequests?: boolean;
  /** @deprecated the former name of {@link directRequests} (it covered only PutObject). */
  readonly fastPut?: boolean;
}

/** What {@link S3Backend.ensureBucket} did. */
export interface EnsureBucketResult {
  readonly created: boolean;
}

/** ObjectInfo from the headers of a direct GET or HEAD. */
function infoFromHeaders(read: DirectRead): ObjectInfo {
  const h = read.headers;
  const length = h['content-length'] === undefined ? Number.NaN : Number(h['content-length']);
  const modified = h['last-modified'] === undefined ? Number.NaN : Date.parse(h['last-modified']);
  const one = (v: string | string[] | undefined) => (typeof v === 'string' ? v : undefined);
  const etag = one(h.etag);
  const contentType = one(h['content-type']);
  const contentEncoding = one(h['content-encoding']);
  return {
    ...(Number.isSafeInteger(length) && length >= 0 && { size: length }),
    ...(etag !== undefined && { etag }),
    ...(contentType !== undefined && { contentType }),
    ...(contentEncoding !== undefined && { contentEncoding }),
    ...(Number.isFinite(modified) && { lastModified: modified }),
  };
}

/**
 * A {@link StorageBackend} on an S3 bucket (AWS S3, MinIO, R2, Garage, s3rver, …).
 *
 * @example
 * const backend = new S3Backend(parseStoreUrl('s3://cache?endpoint=http://127.0.0.1:9000'), {});
 * await backend.put('nix-cache-info', new TextEncoder().encode('StoreDir: /nix/store\n'), { contentType: 'text/x-nix-cache-info' });
 */
export class S3Backend implements StorageBackend {
  readonly location: string;
  readonly conditionalWrites = true;
  readonly bucket: string;
  /** Key prefix inside the bucket, '' for none. */
  readonly prefix: string;
  /** The endpoint URL requests go to, for messages. */
  readonly endpointUrl: string;
  readonly #config: StoreConfig;
  readonly #ownsClient: boolean;
  readonly #warn: (message: string) => void;
  readonly #queueSize: number;
  /** Per-attempt limit until a bodyless request's response starts (the SDK's `requestTimeout`). */
  readonly #firstByte: { requestTimeout?: number };
  readonly #listPageSize: number | undefined;
  /** Where credentials come from, for messages. */
  readonly #credentialsFrom: string;
  /** Direct requests (S3-compatible endpoints, path-style), undefined when not used. */
  readonly #direct: DirectS3 | undefined;
  /** The SDK client once built; its settings until then (undefined for a caller's client). */
  #client: S3Client | undefined;
  readonly #clientConfig: S3ClientConfig | undefined;

  /**
   * @throws {NixcacheError} BAD_ARGUMENT when the config is not an s3:// store with a bucket.
   */
  constructor(config: StoreConfig, options: S3BackendOptions = {}) {
    if (config.scheme !== 's3' || !config.bucket) {
      throw new NixcacheError(
        'BAD_ARGUMENT',
        `S3Backend needs an s3://bucket store URL, got ${config.baseUrl}`,
        {
          url: config.baseUrl,
        },
      );
    }
    this.#config = config;
    this.bucket = config.bucket;
    this.prefix = config.prefix;
    this.location = config.baseUrl;
    this.endpointUrl = config.endpoint ?? `https://s3.${config.region}.amazonaws.com`;
    this.#warn = options.onWarning ?? ((m) => console.warn(`nixcache: ${m}`));
    this.#queueSize = Math.max(1, options.queueSize ?? 2);
    const firstByteMs = options.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS;
    this.#firstByte = firstByteMs > 0 ? { requestTimeout: firstByteMs } : {};
    this.#listPageSize = options.listPageSize;
    this.#credentialsFrom = options.client
      ? 'the S3 client given to nixcache'
      : options.credentials !== undefined
        ? 'the credentials given to nixcache'
        : config.profile
          ? `profile '${config.profile}'`
          : 'the default AWS credential chain';
    if (options.client) {
      this.#client = options.client;
      this.#clientConfig = undefined;
      this.#ownsClient = false;
      this.#direct = undefined;
    } else {
      // The client (and the SDK) waits for the first request that needs it: see s3-sdk.ts.
      const clientConfig = s3ClientConfig(config, options);
      this.#clientConfig = clientConfig;
      this.#ownsClient = true;
      const origin = clientConfig.forcePathStyle ? directOrigin(config.endpoint) : undefined;
      const credentials = directCredentials(config, options.credentials, () => this.#sdkClient());
      this.#direct =
        origin && (options.directRequests ?? options.fastPut) !== false
          ? new DirectS3(origin, {
              region: config.region,
              credentials,
              maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
              connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
              firstByteTimeoutMs: firstByteMs,
              idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
            })
          : undefined;
    }
  }

  /** The S3 client in use (the caller's, or one built from the store URL on first use). */
  get client(): S3Client {
    if (this.#client === undefined) {
      const { S3Client } = s3Sdk();
      this.#client = new S3Client(this.#clientConfig!);
      capSdkResponses(this.#client, DEFAULT_MAX_SMALL_OBJECT_BYTES, this.endpointUrl);
    }
    return this.#client;
  }

  /**
   * The client, once the SDK is loaded (asynchronously: bundlers include what `import()` names),
   * also for a caller's client: the commands sent through it come from the SDK module too.
   */
  async #sdkClient(): Promise<S3Client> {
    await loadS3Sdk();
    return this.client;
  }

  /** Full object key for a store-relative key. */
  objectKey(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  #url(key?: string): string {
    return key === undefined ? `s3://${this.bucket}` : `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  /** Maps an SDK failure to a NixcacheError naming the object, the operation and the endpoint. */
  #fail(operation: string, key: string | undefined, e: unknown, signal?: AbortSignal): NixcacheError {
    return s3Failure(
      {
        url: this.#url(key),
        operation,
        endpoint: this.endpointUrl,
        bucket: this.bucket,
        profile: this.#config.profile,
        credentialsFrom: this.#credentialsFrom,
      },
      e,
      signal,
    );
  }

  /**
   * A GET or HEAD sent directly (s3-direct.ts): 'absent', a 2xx answer, or undefined when the
   * SDK must send it (no direct path, no answer, or an answer the SDK must give its own words:
   * a missing bucket, refused credentials, a redirect, a server error). A 4xx other than
   * absence turns direct requests off: the server may dislike something about them.
   */
  async #directRead(
    method: 'GET' | 'HEAD',
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<DirectRead | 'absent' | undefined> {
    if (!this.#direct) return undefined;
    let read: DirectRead | undefined;
    try {
      read = await this.#direct.read(method, `${this.bucket}/${this.objectKey(key)}`, signal);
    } catch (e) {
      throw this.#fail(method === 'GET' ? 'GetObject' : 'HeadObject', key, e, signal);
    }
    if (read === undefined) return undefined;
    if (read.status >= 200 && read.status < 300) return read;
    // A HEAD answer has no body, hence no code: any 403 counts as absent, as in Nix (and as the
    // SDK path decides).
    if (absentAnswer(read.status, read.code)) return 'absent';
    if (read.status >= 400 && read.status < 500 && read.code !== 'NoSuchBucket') this.#direct.refused();
    return undefined;
  }

  /**
   * One ListObjectsV2 page of the keys under `prefix` (store-relative), as a direct request
   * (s3-direct.ts) or, when that is not to be had, through the SDK; with `details`, each object's
   * Size and LastModified too (a direct page without them goes to the SDK). Keys are full object
   * keys, as the server gives them.
   */
  async #listPage(
    prefix: string,
    delimiter: string | undefined,
    token: string | undefined,
    signal: AbortSignal | undefined,
    details: boolean,
  ): Promise<S3ListPage> {
    const fullPrefix = this.objectKey(prefix);
    try {
      const direct = await this.#direct?.list(
        this.bucket,
        {
          prefix: fullPrefix,
          ...(delimiter !== undefined && { delimiter }),
          ...(token !== undefined && { continuationToken: token }),
          ...(this.#listPageSize !== undefined && { maxKeys: this.#listPageSize }),
          ...(details && { details }),
        },
        signal,
      );
      if (direct && (!details || direct.objects)) {
        return {
          Contents: direct.objects
            ? direct.objects.map((o) => ({ Key: o.key, Size: o.size, LastModified: o.lastModified }))
            : direct.keys.map((Key) => ({ Key })),
          IsTruncated: direct.truncated,
          ...(direct.nextToken !== undefined && { NextContinuationToken: direct.nextToken }),
        };
      }
      signal?.throwIfAborted();
      return await (await this.#sdkClient()).send(
        new (s3Sdk().ListObjectsV2Command)({
          Bucket: this.bucket,
          Prefix: fullPrefix,
          ...(delimiter && { Delimiter: delimiter }),
          ...(token !== undefined && { ContinuationToken: token }),
          ...(this.#listPageSize !== undefined && { MaxKeys: this.#listPageSize }),
        }),
        { abortSignal: signal, ...this.#firstByte },
      );
    } catch (e) {
      throw this.#fail('ListObjectsV2', prefix, e, signal);
    }
  }

  /**
   * Reads an object as a stream; undefined when absent (404, or 403 other than a credentials error).
   * The stream errors with NETWORK when the connection breaks or the body is shorter than its
   * Content-Length, and with ABORTED when the signal fires. Read the body to its end or stop
   * iterating (`break`/`return()`): a body never iterated keeps its connection until collected.
   *
   * @throws {NixcacheError} NETWORK, IO, NOT_FOUND (no such bucket), ABORTED.
   * @example const obj = await backend.get('nix-cache-info'); if (obj) for await (const c of obj.body) …
   */
  async get(key: string, options: ReadOptions = {}): Promise<ObjectBody | undefined> {
    const signal = options.signal;
    const direct = await this.#directRead('GET', key, signal);
    if (direct === 'absent') return undefined;
    if (direct?.body) {
      const { lastModified: _, ...info } = infoFromHeaders(direct);
      return { ...info, body: this.#readBody(key, direct.body, info.size, signal) };
    }
    let res: GetObjectCommandOutput;
    try {
      signal?.throwIfAborted();
      res = await (await this.#sdkClient()).send(
        new (s3Sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }),
        {
          abortSignal: signal,
          ...this.#firstByte,
        },
      );
    } catch (e) {
      if (!signal?.aborted && absent(e)) return undefined;
      throw this.#fail('GetObject', key, e, signal);
    }
    const body = res.Body as (AsyncIterable<Uint8Array> & { destroy?: (e?: Error) => void }) | undefined;
    const size = res.ContentLength;
    return {
      ...(size !== undefined && { size }),
      ...(res.ETag !== undefined && { etag: res.ETag }),
      ...(res.ContentType !== undefined && { contentType: res.ContentType }),
      ...(res.ContentEncoding !== undefined && { contentEncoding: res.ContentEncoding }),
      body: this.#readBody(key, body, size, signal),
    };
  }

  async *#readBody(
    key: string,
    body: (AsyncIterable<Uint8Array> & { destroy?: (e?: Error) => void }) | undefined,
    expected: number | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Uint8Array> {
    if (!body) return;
    let received = 0;
    let finished = false;
    const onAbort = () => body.destroy?.(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      signal?.throwIfAborted();
      for await (const chunk of body) {
        received += chunk.length;
        yield chunk;
      }
      finished = true;
    } catch (e) {
      throw this.#fail('GetObject (reading the body)', key, e, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!finished) body.destroy?.();
    }
    if (expected !== undefined && received !== expected) {
      throw new StoreError(
        'NETWORK',
        `${this.#url(key)}: GetObject failed: the body ended after ${received} of ${expected} bytes (endpoint ${this.endpointUrl})`,
        {
          url: this.#url(key),
          operation: 'GetObject',
          endpoint: this.endpointUrl,
          expected: String(expected),
          actual: String(received),
        },
      );
    }
  }

  /**
   * Object metadata; undefined when absent (HEAD has no body, so any 403 counts as absent, as in Nix).
   *
   * @throws {NixcacheError} NETWORK, IO, ABORTED.
   * @example if (await backend.head('abc….narinfo')) …
   */
  async head(key: string, options: ReadOptions = {}): Promise<ObjectInfo | undefined> {
    const signal = options.signal;
    const direct = await this.#directRead('HEAD', key, signal);
    if (direct === 'absent') return undefined;
    if (direct && direct.status >= 200 && direct.status < 300) return infoFromHeaders(direct);
    try {
      signal?.throwIfAborted();
      const res = await (await this.#sdkClient()).send(
        new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }),
        {
          abortSignal: signal,
          ...this.#firstByte,
        },
      );
      return {
        ...(res.ContentLength !== undefined && { size: res.ContentLength }),
        ...(res.ETag !== undefined && { etag: res.ETag }),
        ...(res.ContentType !== undefined && { contentType: res.ContentType }),
        ...(res.ContentEncoding !== undefined && { contentEncoding: res.ContentEncoding }),
        ...(res.LastModified !== undefined && { lastModified: res.LastModified.getTime() }),
      };
    } catch (e) {
      if (!signal?.aborted && absent(e)) return undefined;
      throw this.#fail('HeadObject', key, e, signal);
    }
  }

  /**
   * Writes an object, choosing the request shape from the size (s3-put.ts).
   *
   * @throws {NixcacheError} CONFLICT when `ifMatch`/`ifNoneMatch` does not hold (HTTP 412);
   *   NETWORK (connection, timeout, 5xx), IO (other HTTP errors, credentials), ABORTED; the body
   *   source's own NixcacheError unchanged (other source errors as IO with the cause);
   *   BAD_ARGUMENT when the body's length differs from `size`.
   * @example await backend.put('nar/x.nar.xz', chunks, { contentType: 'application/x-nix-nar', size })
   */
  put(key: string, body: ByteSource, options: PutOptions): Promise<ObjectInfo> {
    return putObject(
      {
        client: () => this.#sdkClient(),
        bucket: this.bucket,
        objectKey: this.objectKey(key),
        url: this.#url(key),
        endpointUrl: this.endpointUrl,
        config: this.#config,
        direct: this.#direct,
        queueSize: this.#queueSize,
        warn: this.#warn,
        fail: (operation, e, signal) => this.#fail(operation, key, e, signal),
      },
      body,
      options,
    );
  }

  /**
   * Every key (relative to the store prefix) that starts with `prefix`, page by page
   * (ListObjectsV2 with continuation tokens).
   *
   * @throws {NixcacheError} NETWORK, IO, NOT_FOUND (no such bucket), ABORTED.
   * @example for await (const key of backend.list('')) if (key.endsWith('.narinfo')) …
   */
  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<string> {
    const signal = options.signal;
    // Non-recursive listings stop at the next '/', so listing narinfos does not page through nar/.
    const delimiter = options.recursive === false ? '/' : undefined;
    const base = this.prefix ? `${this.prefix}/` : '';
    const fetchPage = (token: string | undefined) => this.#listPage(prefix, delimiter, token, signal, false);
    // One page ahead: the next page is requested as soon as this one arrives, so the consumer
    // works on 1000 keys while the next 1000 are on their way. Never more than one page ahead.
    let next: Promise<S3ListPage> | undefined = fetchPage(undefined);
    let asked: string | undefined;
    try {
      while (next) {
        const page = await next;
        const token = nextListToken(page, asked, { url: this.#url(prefix), endpoint: this.endpointUrl });
        asked = token;
        next = token === undefined ? undefined : fetchPage(token);
        // A failure of the prefetch surfaces when its turn comes, not as an unhandled rejection.
        next?.catch(() => {});
        for (const item of page.Contents ?? []) {
          if (item.Key?.startsWith(base)) yield item.Key.slice(base.length);
        }
      }
    } finally {
      // The consumer stopped early: the prefetched page is dropped (its error too).
      next?.catch(() => {});
    }
  }

  /**
   * Removes an object; absent objects are fine.
   *
   * @throws {NixcacheError} NETWORK, IO, ABORTED.
   * @example await backend.delete('abc….narinfo')
   */
  async delete(key: string, options: ReadOptions = {}): Promise<void> {
    const signal = options.signal;
    try {
      signal?.throwIfAborted();
      await (await this.#sdkClient()).send(
        new (s3Sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }),
        {
          abortSignal: signal,
          ...this.#firstByte,
        },
      );
    } catch (e) {
      if (!signal?.aborted && httpStatus(e) === 404 && s3Code(e) !== 'NoSuchBucket') return;
      throw this.#fail('DeleteObject', key, e, signal);
    }
  }

  /**
   * Creates the bucket when HeadBucket says it does not exist (with a LocationConstraint outside
   * us-east-1). An existing bucket owned by the caller is fine.
   *
   * @throws {NixcacheError} CONFLICT when the name belongs to someone else; IO (403: no access),
   *   NETWORK, ABORTED.
   * @example const { created } = await backend.ensureBucket({ signal })
   */
  async ensureBucket(options: ReadOptions = {}): Promise<EnsureBucketResult> {
    const signal = options.signal;
    try {
      signal?.throwIfAborted();
      await (await this.#sdkClient()).send(new (s3Sdk().HeadBucketCommand)({ Bucket: this.bucket }), {
        abortSignal: signal,
        ...this.#firstByte,
      });
      return { created: false };
    } catch (e) {
      if (signal?.aborted || httpStatus(e) !== 404) {
        const err = this.#fail('HeadBucket', undefined, e, signal);
        if (httpStatus(e) === 403 && err.code === 'IO') {
          throw new StoreError(
            'IO',
            `${err.message}: the bucket exists but these credentials may not use it (or it belongs to another account)`,
            err.data,
            { cause: e },
          );
        }
        throw err;
      }
    }
    const region = this.#config.region;
    try {
      await (await this.#sdkClient()).send(
        new (s3Sdk().CreateBucketCommand)({
          Bucket: this.bucket,
          ...(region !== 'us-east-1' && {
            CreateBucketConfiguration: { LocationConstraint: region as never },
          }),
        }),
        { abortSignal: signal },
      );
      return { created: true };
    } catch (e) {
      const code = s3Code(e);
      if (code === 'BucketAlreadyOwnedByYou') return { created: false };
      if (code === 'BucketAlreadyExists') {
        throw new StoreError(
          'CONFLICT',
          `${this.#url()}: CreateBucket failed: the bucket name is taken by another account (endpoint ${this.endpointUrl})`,
          { url: this.#url(), operation: 'CreateBucket', endpoint: this.endpointUrl, s3Code: code },
          { cause: e },
        );
      }
      throw this.#fail('CreateBucket', undefined, e, signal);
    }
  }

  /**
   * Lets anyone download the cache's objects without credentials: adds (or replaces) the statement
   * `NixcachePublicRead` allowing anonymous `s3:GetObject` on `arn:aws:s3:::bucket/prefix/*` in the
   * bucket policy, keeping other statements. Listing stays private, so a missing key answers 403,
   * which Nix reads as absent.
   *
   * @throws {NixcacheError} UNSUPPORTED when the server has no bucket policies (s3rver, Garage, R2);
   *   IO (e.g. AWS Block Public Access refuses public policies), NETWORK, ABORTED.
   * @example await backend.setPublicRead({ signal })
   */
  async setPublicRead(options: ReadOptions = {}): Promise<void> {
    return setS3PublicRead(this.#housekeeping(), options);
  }

  /**
   * Expires objects under the store prefix `days` days after they were written: adds (or replaces)
   * the lifecycle rule `nixcache-expiry` (Filter/Prefix, Expiration/Days), keeping other rules.
   * Beware (NixOS/nix#8080): expiry counts from each object's upload, so a narinfo can outlive a
   * NAR or a reference it needs when those were uploaded earlier and reused.
   *
   * @throws {NixcacheError} BAD_ARGUMENT when days is not a positive integer; UNSUPPORTED when the
   *   server has no lifecycle rules (s3rver); IO, NETWORK, ABORTED.
   * @example await backend.setExpiry(30, { signal })
   */
  async setExpiry(days: number, options: ReadOptions = {}): Promise<void> {
    return setS3Expiry(this.#housekeeping(), days, options);
  }

  // Housekeeping (gc, repair): see s3-housekeeping.ts.

  #housekeeping(): S3HousekeepingContext {
    return {
      client: () => this.#sdkClient(),
      bucket: this.bucket,
      prefix: this.prefix,
      fail: (operation, key, e, signal) => this.#fail(operation, key, e, signal),
      endpointUrl: this.endpointUrl,
      bucketUrl: this.#url(),
      requestOptions: this.#firstByte,
      listPage: (prefix, delimiter, token, signal) => this.#listPage(prefix, delimiter, token, signal, true),
    };
  }

  /** Keys with Size and LastModified (ListObjectsV2). @throws {NixcacheError} NETWORK, IO, ABORTED. */
  listObjects(prefix: string, options: ListOptions = {}): AsyncIterable<ListedObject> {
    return listS3Objects(this.#housekeeping(), prefix, options);
  }

  /** DeleteObjects, 1000 keys a request. @throws {NixcacheError} NETWORK, IO, UNSUPPORTED, ABORTED. */
  deleteMany(keys: readonly string[], options: ReadOptions = {}): Promise<DeleteManyResult> {
    return deleteS3Objects(this.#housekeeping(), keys, options);
  }

  /** ListMultipartUploads. @throws {NixcacheError} UNSUPPORTED (s3rver), NETWORK, IO, ABORTED. */
  listPendingUploads(options: ReadOptions = {}): AsyncIterable<PendingUpload> {
    return listS3MultipartUploads(this.#housekeeping(), options);
  }

  /** AbortMultipartUpload. @throws {NixcacheError} UNSUPPORTED (s3rver), NETWORK, IO, ABORTED. */
  abortPendingUpload(upload: PendingUpload, options: ReadOptions = {}): Promise<void> {
    return abortS3MultipartUpload(this.#housekeeping(), upload, options);
  }

  /**
   * Releases the sockets of a client this backend built (a caller's client is left alone).
   *
   * @example await backend.close()
   */
  async close(): Promise<void> {
    this.#direct?.close();
    if (this.#ownsClient) this.#client?.destroy();
  }
}

/**
 * Builds an {@link S3Backend}; the entry point `openStore` uses after `import('./s3.js')`.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when the config is not an s3:// store.
 * @example const backend = await createS3Backend(parseStoreUrl('s3://cache?region=eu-west-2'), {})
 */
export async function createS3Backend(
  config: StoreConfig,
  options: S3BackendOptions = {},
): Promise<S3Backend> {
  return new S3Backend(config, options);
}
