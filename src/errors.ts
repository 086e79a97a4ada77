/**
 * The one error hierarchy of nixcache. Every parser and store operation throws a
 * `NixcacheError` whose `code` says what kind of failure it is and whose `data` says
 * where (file, line, field, byte offset, path) and why (expected, actual).
 */

/** Stable, machine-readable error kinds. */
export type ErrorCode =
  | 'BAD_NIX32'
  | 'BAD_BASE64'
  | 'BAD_HASH'
  | 'UNKNOWN_ALGORITHM'
  | 'BAD_STORE_PATH'
  | 'BAD_NARINFO'
  | 'BAD_CONTENT_ADDRESS'
  | 'BAD_KEY'
  | 'BAD_SIGNATURE'
  | 'BAD_NAR'
  | 'BAD_LISTING'
  | 'BAD_CACHE_INFO'
  | 'BAD_DATABASE'
  | 'BAD_STORE_URL'
  | 'BAD_ARGUMENT'
  | 'UNSUPPORTED'
  | 'MISSING_DEPENDENCY'
  | 'COMPRESSION'
  | 'INTEGRITY'
  | 'NOT_FOUND'
  | 'IO'
  | 'NETWORK'
  | 'CONFLICT'
  /** A size limit was exceeded (decompressed output, a small object such as a narinfo). */
  | 'TOO_LARGE'
  | 'ABORTED';

/** Where and why; every field is optional, filled in by whoever knows it. */
export interface ErrorData {
  readonly source?: string;
  readonly line?: number;
  readonly field?: string;
  readonly offset?: number;
  readonly path?: string;
  readonly expected?: string;
  readonly actual?: string;
  readonly url?: string;
  readonly operation?: string;
  readonly [key: string]: unknown;
}

/**
 * Base class of every error nixcache throws on purpose.
 *
 * @example
 * try { parseNarInfo(text) } catch (e) { if (e instanceof NixcacheError) console.log(e.code, e.data) }
 */
export class NixcacheError extends Error {
  readonly code: ErrorCode;
  readonly data: ErrorData;

  constructor(code: ErrorCode, message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NixcacheError';
    this.code = code;
    this.data = data;
  }
}

/** A downloaded or streamed object does not match the hash or size that was promised for it. */
export class IntegrityError extends NixcacheError {
  constructor(message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super('INTEGRITY', message, data, options);
    this.name = 'IntegrityError';
  }
}

/** A store or network operation failed (connection refused, 5xx, timeout, credentials). */
export class StoreError extends NixcacheError {
  constructor(code: ErrorCode, message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'StoreError';
  }
}

/** True when `e` is a NixcacheError, optionally with the given code. */
export function isNixcacheError(e: unknown, code?: ErrorCode): e is NixcacheError {
  return e instanceof NixcacheError && (code === undefined || e.code === code);
}
