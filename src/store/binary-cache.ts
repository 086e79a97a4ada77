/**
 * A binary cache over any storage driver (nix-formats.md §7): nix-cache-info, narinfos, NARs
 * verified while they stream, listings, and raw files with Nix's content types. Backend-neutral,
 * so file://, http(s):// and s3:// behave the same.
 */
import { compress, decompress } from '../compression/compress.js';
import { IntegrityError, NixcacheError } from '../errors.js';
import { formatHash, hashEquals, type NixHash } from '../hash/hash.js';
import { createHasher } from '../hash/hasher.js';
import { bytesEqual, fromUtf8 } from '../internal/bytes.js';
import { type ByteSource, collectBytes } from '../internal/iter.js';
import { formatNarInfo } from '../narinfo/format.js';
import { parseNarInfo } from '../narinfo/parse.js';
import type { NarInfo } from '../narinfo/types.js';
import {
  HASH_PART_LENGTH,
  isHashPart,
  parseStorePath,
  parseStorePathBasename,
} from '../store-path/store-path.js';
import type { ObjectInfo, ReadOptions, StorageBackend } from './backend.js';
import { type CacheInfo, parseCacheInfo } from './cache-info.js';
import {
  CACHE_INFO_KEY,
  checkKey,
  contentTypeFor,
  hashPartOfNarInfoKey,
  narInfoKey,
  narUrlToKey,
} from './layout.js';
import { collectLimited, DEFAULT_MAX_SMALL_OBJECT_BYTES, decodeLimited, tooLarge } from './limits.js';
import { NAR_PEEK_BYTES, type NarWarning, narCompression, peek } from './nar-compression.js';
import type { StoreConfig } from './url.js';

/** What `getNarInfo` accepts: a hash part, a basename or a full store path. */
export type PathQuery = string;

export interface PutFileOptions extends ReadOptions {
  readonly contentType?: string;
  readonly contentEncoding?: string;
  readonly size?: number;
  readonly ifMatch?: string;
  readonly ifNoneMatch?: boolean;
}

export interface GetNarOptions extends ReadOptions {
  /** Check FileHash/FileSize when the narinfo has them (default true). */
  readonly checkFileHash?: boolean;
  /**
   * Told about problems that do not stop the NAR from being read, e.g. a narinfo without
   * `Compression:` or with the wrong one (the format is then detected from the data, as Nix does).
   */
  readonly onWarning?: (warning: NarWarning) => void;
}

function splitQuery(query: PathQuery, storeDir: string): { hash: string; name?: string } {
  if (query.startsWith('/')) {
    const sp = parseStorePath(query, storeDir);
    return { hash: sp.hash, name: sp.name };
  }
  if (query.length === HASH_PART_LENGTH && isHashPart(query)) return { hash: query };
  const sp = parseStorePathBasename(query, storeDir);
  return { hash: sp.hash, name: sp.name };
}

/** Counts and hashes bytes as they pass, then checks them at the end. */
async function* measured(
  source: AsyncIterable<Uint8Array>,
  onEnd: (size: number, digest: Uint8Array) => void,
): AsyncGenerator<Uint8Array> {
  const hasher = createHasher('sha256');
  let size = 0;
  for await (const chunk of source) {
    hasher.update(chunk);
    size += chunk.length;
    yield chunk;
  }
  onEnd(size, hasher.digest());
}

function sameDigest(a: Uint8Array, b: NixHash): boolean {
  return b.algorithm === 'sha256' && bytesEqual(a, b.digest);
}

/** Options of {@link BinaryCacheStore}. */
export interface BinaryCacheStoreOptions {
  /**
   * Most bytes a narinfo, listing, nix-cache-info or other file read whole may have, as stored
   * and once its Content-Encoding is undone (default {@link DEFAULT_MAX_SMALL_OBJECT_BYTES}, 8 MiB).
   */
  readonly maxSmallObjectBytes?: number;
}

/** A binary cache store: the API of nixcache/store. */
export class BinaryCacheStore {
  readonly config: StoreConfig;
  readonly backend: StorageBackend;
  /** Limit of `getFile`, `getNarInfo` and `getCacheInfo` (bytes, raw and decoded). */
  readonly maxSmallObjectBytes: number;

  constructor(config: StoreConfig, backend: StorageBackend, options: BinaryCacheStoreOptions = {}) {
    this.config = config;
    this.backend = backend;
    this.maxSmallObjectBytes = options.maxSmallObjectBytes ?? DEFAULT_MAX_SMALL_OBJECT_BYTES;
  }

  /** Where the store is, for messages (no credentials). */
  get location(): string {
    return this.backend.location;
  }

  get storeDir(): string {
    return this.config.storeDir;
  }

  /**
   * Reads and parses `nix-cache-info`; undefined when the cache has none.
   *
   * @throws {NixcacheError} NETWORK/IO on failure.
   */
  async getCacheInfo(options: ReadOptions = {}): Promise<CacheInfo | undefined> {
    const bytes = await this.getFile(CACHE_INFO_KEY, options);
    return bytes === undefined ? undefined : parseCacheInfo(fromUtf8(bytes));
  }

  /**
   * Reads a narinfo by hash part, basename or full store path; undefined when absent.
   *
   * @throws {NixcacheError} BAD_NARINFO when it does not parse; INTEGRITY when its StorePath is
   *   not the path asked for; NETWORK/IO on failure.
   * @example await store.getNarInfo('/nix/store/syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin')
   */
  async getNarInfo(query: PathQuery, options: ReadOptions = {}): Promise<NarInfo | undefined> {
    return (await this.getNarInfoVersioned(query, options))?.info;
  }

  /**
   * Like `getNarInfo`, with the object's version tag for a conditional rewrite
   * (`putNarInfo(info, { ifMatch: etag })`).
   */
  async getNarInfoVersioned(
    query: PathQuery,
    options: ReadOptions = {},
  ): Promise<{ info: NarInfo; etag?: string } | undefined> {
    const { hash, name } = splitQuery(query, this.storeDir);
    const key = narInfoKey(hash);
    const object = await this.#getSmall(key, options);
    if (object === undefined) return undefined;
    const info = parseNarInfo(fromUtf8(object.bytes), {
      source: `${this.location}/${key}`,
      storeDir: this.storeDir,
    });
    const sp = parseStorePath(info.storePath, this.storeDir);
    if (sp.hash !== hash || (name !== undefined && name !== 'x' && sp.name !== name)) {
      throw new IntegrityError(
        `${this.location}/${key}: StorePath ${info.storePath} is not the path asked for (${query})`,
        { url: `${this.location}/${key}`, field: 'StorePath', expected: query, actual: info.storePath },
      );
    }
    return { info, ...(object.etag !== undefined && { etag: object.etag }) };
  }

  /** True when the cache has a narinfo for the path. */
  async hasNarInfo(query: PathQuery, options: ReadOptions = {}): Promise<boolean> {
    const { hash } = splitQuery(query, this.storeDir);
    return (await this.backend.head(narInfoKey(hash), options)) !== undefined;
  }

  /**
   * Writes a narinfo (last, after its NAR and its references), compressed when
   * `narinfo-compression` is set.
   */
  async putNarInfo(info: NarInfo, options: ReadOptions & { ifMatch?: string } = {}): Promise<ObjectInfo> {
    const hash = parseStorePath(info.storePath, this.storeDir).hash;
    return this.putFile(narInfoKey(hash), new TextEncoder().encode(formatNarInfo(info)), {
      ...options,
      compression: this.config.narinfoCompression,
    });
  }

  /**
   * The decompressed NAR of `info`, verified while it streams: FileSize/FileHash of the
   * compressed bytes, then NarSize/NarHash of the NAR. The stream errors at its end if anything
   * differs, so a consumer must read it to the end before trusting what it wrote.
   *
   * A narinfo without `Compression:` (or with the wrong one) is decoded in the format its data
   * has, as Nix does, and reported through `onWarning`.
   *
   * @throws {NixcacheError} NOT_FOUND when the NAR file is missing; BAD_NARINFO for a URL that
   *   escapes the cache; IntegrityError (INTEGRITY) on any mismatch, including more bytes than
   *   NarSize (the decoder stops there); COMPRESSION on corrupt data.
   */
  async *getNar(info: NarInfo, options: GetNarOptions = {}): AsyncGenerator<Uint8Array> {
    const { key } = narUrlToKey(info.url, info.storePath);
    const object = await this.backend.get(key, options);
    if (!object) {
      throw new NixcacheError('NOT_FOUND', `${this.location}/${key}: NAR of ${info.storePath} is missing`, {
        url: `${this.location}/${key}`,
        path: info.storePath,
      });
    }
    const where = `${this.location}/${key}`;
    const mismatch = (what: string, expected: string, actual: string) =>
      new IntegrityError(
        `${where}: ${what} mismatch for ${info.storePath}: expected ${expected}, got ${actual}`,
        {
          url: where,
          path: info.storePath,
          field: what,
          expected,
          actual,
        },
      );
    const checkFile = options.checkFileHash ?? true;
    const compressed = measured(object.body, (size, digest) => {
      if (!checkFile) return;
      if (info.fileSize !== undefined && info.fileSize !== size) {
        throw mismatch('FileSize', String(info.fileSize), String(size));
      }
      if (info.fileHash && !sameDigest(digest, info.fileHash)) {
        throw mismatch('FileHash', formatHash(info.fileHash), formatHash({ algorithm: 'sha256', digest }));
      }
    });
    // The codec itself stops past NarSize: a small file claiming a small NAR cannot make it
    // decode gigabytes before the size check below sees them.
    // The format comes from the data when the narinfo's Compression is absent or wrong, as in Nix.
    const { head, stream } = await peek(compressed, NAR_PEEK_BYTES);
    const { method, warning } = narCompression(info, head, where);
    if (warning) options.onWarning?.(warning);
    const nar = decompress(method, stream, {
      signal: options.signal,
      maxOutputBytes: info.narSize,
    });
    let narSize = 0;
    const narHasher = createHasher(info.narHash.algorithm);
    const tooLong = () => mismatch('NarSize', String(info.narSize), `more than ${info.narSize}`);
    try {
      for await (const chunk of nar) {
        narSize += chunk.length;
        if (narSize > info.narSize) throw tooLong();
        narHasher.update(chunk);
        yield chunk;
      }
    } catch (e) {
      if (e instanceof NixcacheError && e.code === 'TOO_LARGE' && e.data.limit === info.narSize)
        throw tooLong();
      throw e;
    }
    if (narSize !== info.narSize) throw mismatch('NarSize', String(info.narSize), String(narSize));
    const digest = narHasher.digest();
    const actual = { algorithm: info.narHash.algorithm, digest };
    if (!hashEquals(actual, info.narHash)) {
      throw mismatch('NarHash', formatHash(info.narHash), formatHash(actual));
    }
  }

  /**
   * Hash parts of every narinfo in the cache (ListObjectsV2 with pagination on S3).
   *
   * @throws {NixcacheError} UNSUPPORTED for plain HTTP caches.
   */
  async *listNarInfos(options: ReadOptions = {}): AsyncGenerator<string> {
    for await (const key of this.backend.list('', { ...options, recursive: false })) {
      const hash = hashPartOfNarInfoKey(key);
      if (hash) yield hash;
    }
  }

  /**
   * Reads a whole small file (narinfo, listing, nix-cache-info); undefined when absent.
   *
   * @throws {NixcacheError} TOO_LARGE naming the URL when the file, as stored or decoded, is larger
   *   than `maxSmallObjectBytes`; NETWORK/IO on failure.
   */
  async getFile(key: string, options: ReadOptions = {}): Promise<Uint8Array | undefined> {
    return (await this.#getSmall(key, options))?.bytes;
  }

  /**
   * A whole small file, undoing a Content-Encoding (narinfo/ls compression), with its etag. Both
   * the bytes received (after fetch()'s own decoding of gzip/br on http) and the bytes decoded here
   * are capped, and the transfer stops at the cap.
   */
  async #getSmall(
    key: string,
    options: ReadOptions,
  ): Promise<{ bytes: Uint8Array; etag?: string } | undefined> {
    const object = await this.backend.get(checkKey(key), options);
    if (!object) return undefined;
    const url = `${this.location}/${key}`;
    const limit = this.maxSmallObjectBytes;
    const encoding = object.contentEncoding;
    const transportDecoded = encoding !== undefined && this.#transportDecoded(encoding);
    // A declared size over the limit fails before reading (unless fetch() decodes the body, in
    // which case the header is the encoded size).
    if (object.size !== undefined && object.size > limit && !transportDecoded) {
      // Start and stop the body, so that its connection or file is released.
      for await (const _ of object.body) break;
      throw tooLarge(url, limit, 'object', object.size);
    }
    let bytes = await collectLimited(object.body, limit, url);
    if (encoding && encoding !== 'identity' && !transportDecoded) {
      bytes = await decodeLimited(encoding, bytes, limit, url, options.signal);
    }
    return { bytes, ...(object.etag !== undefined && { etag: object.etag }) };
  }

  /** fetch() already undoes the Content-Encodings it knows; other backends hand us raw bytes. */
  #transportDecoded(encoding: string): boolean {
    return (
      (this.config.scheme === 'http' || this.config.scheme === 'https') &&
      ['gzip', 'br', 'deflate'].includes(encoding)
    );
  }

  /** Streams a file; undefined when absent. */
  async getFileStream(
    key: string,
    options: ReadOptions = {},
  ): Promise<AsyncIterable<Uint8Array> | undefined> {
    return (await this.backend.get(checkKey(key), options))?.body;
  }

  async hasFile(key: string, options: ReadOptions = {}): Promise<boolean> {
    return (await this.backend.head(checkKey(key), options)) !== undefined;
  }

  /**
   * Writes a file with Nix's Content-Type for its key. With `compression`, the body is compressed
   * and sent with `Content-Encoding` (for narinfo, .ls and log files only, as Nix does).
   */
  async putFile(
    key: string,
    body: ByteSource,
    options: PutFileOptions & { compression?: string | undefined } = {},
  ): Promise<ObjectInfo> {
    checkKey(key);
    const contentType = options.contentType ?? contentTypeFor(key);
    if (options.compression && options.compression !== 'none') {
      const method = options.compression as Parameters<typeof compress>[0];
      const compressed = await collectBytes(compress(method, body, { signal: options.signal }));
      return this.backend.put(key, compressed, {
        ...options,
        contentType,
        contentEncoding: options.compression,
        size: compressed.length,
      });
    }
    return this.backend.put(key, body, { ...options, contentType });
  }

  async close(): Promise<void> {
    await this.backend.close?.();
  }
}
