/**
 * The storage driver contract: the few object operations a binary cache needs (nix-formats.md §7).
 * One driver per backend (file, http, s3); the binary-cache logic on top of them lives in
 * `binary-cache.ts` and is shared, so one conformance suite covers every backend.
 */
import type { ByteSource } from '../internal/iter.js';

/** Metadata of a stored object. */
export interface ObjectInfo {
  readonly size?: number;
  /** An opaque version tag for conditional writes (S3/HTTP ETag, file: mtime+size). */
  readonly etag?: string;
  readonly contentType?: string;
  readonly contentEncoding?: string;
  /** When the object was last written, in ms since the epoch (file: mtime; S3: LastModified). */
  readonly lastModified?: number;
}

/** One object of a listing with metadata ({@link StorageBackend.listObjects}). */
export interface ListedObject {
  readonly key: string;
  readonly size: number;
  /** ms since the epoch (file: mtime; S3: LastModified, whole seconds). */
  readonly lastModified: number;
}

/** What a batch delete did: keys removed (or already absent), and keys the server refused. */
export interface DeleteManyResult {
  readonly deleted: readonly string[];
  readonly errors: readonly { readonly key: string; readonly code: string; readonly message: string }[];
}

/** An upload that was started and never completed (S3 multipart upload; file: a temp file). */
export interface PendingUpload {
  readonly key: string;
  /** The S3 UploadId, or the temporary file's key on file://. */
  readonly uploadId: string;
  /** ms since the epoch. */
  readonly initiated: number;
}

/** A stored object being read. */
export interface ObjectBody extends ObjectInfo {
  readonly body: AsyncIterable<Uint8Array>;
}

export interface PutOptions {
  readonly contentType: string;
  /** Set only for compressed narinfo/.ls/log files, never for NARs. */
  readonly contentEncoding?: string;
  /** Length of the body when known in advance (lets backends pick single or multipart upload). */
  readonly size?: number;
  /** Write only if the object's current etag is this (optimistic concurrency). */
  readonly ifMatch?: string;
  /** Write only if the object does not exist yet. */
  readonly ifNoneMatch?: boolean;
  readonly signal?: AbortSignal;
}

export interface ReadOptions {
  readonly signal?: AbortSignal;
}

export interface ListOptions extends ReadOptions {
  /** Default true. */
  readonly recursive?: boolean;
}

/**
 * What a storage driver implements. Keys are relative, `/`-separated, already validated (no
 * leading `/`, no `.`/`..` segments). Absence is `undefined`/`false`, never an error.
 */
export interface StorageBackend {
  /** Human-readable location for messages, without credentials. */
  readonly location: string;
  /** Reads an object; undefined when it does not exist (404 and 403 both mean absent). */
  get(key: string, options?: ReadOptions): Promise<ObjectBody | undefined>;
  /** Object metadata; undefined when absent. */
  head(key: string, options?: ReadOptions): Promise<ObjectInfo | undefined>;
  /**
   * Writes an object. A body that fails midway leaves no partial object visible under `key`.
   *
   * @throws {NixcacheError} CONFLICT when `ifMatch`/`ifNoneMatch` does not hold (where the backend
   *   supports conditional writes), NETWORK/IO on failure.
   */
  put(key: string, body: ByteSource, options: PutOptions): Promise<ObjectInfo>;
  /**
   * Every key that starts with `prefix`, in any order. With `recursive: false` only keys with no
   * `/` after the prefix (S3: Delimiter '/'), so listing narinfos does not walk `nar/`.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<string>;
  /** Removes an object; absent objects are fine. */
  delete(key: string, options?: ReadOptions): Promise<void>;
  /**
   * Housekeeping (optional; gc and repair need it, HTTP stores lack it): like `list`, with each
   * object's size and last-modified time.
   */
  listObjects?(prefix: string, options?: ListOptions): AsyncIterable<ListedObject>;
  /**
   * Housekeeping: removes many objects at once (S3 DeleteObjects, at most 1000 keys per request);
   * absent keys count as deleted. Per-key refusals are returned, not thrown.
   */
  deleteMany?(keys: readonly string[], options?: ReadOptions): Promise<DeleteManyResult>;
  /** Housekeeping: uploads started and never completed (S3 ListMultipartUploads). */
  listPendingUploads?(options?: ReadOptions): AsyncIterable<PendingUpload>;
  /** Housekeeping: discards a pending upload (S3 AbortMultipartUpload). */
  abortPendingUpload?(upload: PendingUpload, options?: ReadOptions): Promise<void>;
  /** True when `put` honours `ifMatch`/`ifNoneMatch` atomically. */
  readonly conditionalWrites: boolean;
  /** Releases sockets or handles. */
  close?(): Promise<void>;
}
