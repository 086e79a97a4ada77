/**
 * What an S3 failure means, from the AWS SDK's error objects (and a direct request's status and
 * code, s3-direct.ts): absent object, refused credentials, a network failure, and the
 * NixcacheError that names the object, the operation and the endpoint.
 */
import { type ErrorCode, NixcacheError, StoreError } from '../errors.js';
import { sdkTimeoutReason } from './timeouts.js';

/** Error codes S3 uses for credentials it does not accept. */
export const CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidSecurity',
  'RequestTimeTooSkewed',
  'AuthorizationHeaderMalformed',
]);

/** Node/undici error codes that mean the network, not the server, failed. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
  errors?: unknown[];
}

export function shape(e: unknown): SdkErrorShape {
  return typeof e === 'object' && e !== null ? (e as SdkErrorShape) : { message: String(e) };
}

export function httpStatus(e: unknown): number | undefined {
  return shape(e).$metadata?.httpStatusCode;
}

/** The S3 error code (`NoSuchKey`, `AccessDenied`, …) of an SDK error. */
export function s3Code(e: unknown): string | undefined {
  const s = shape(e);
  return s.Code ?? s.name;
}

export function isAbort(e: unknown): boolean {
  const s = shape(e);
  return s.name === 'AbortError' || s.code === 'ABORT_ERR';
}

export function isNetwork(e: unknown): boolean {
  const s = shape(e);
  if (s.code && NETWORK_CODES.has(s.code)) return true;
  if (s.code?.startsWith('UND_ERR_')) return true;
  if (s.name === 'TimeoutError' || s.name === 'RequestTimeout') return true;
  // Happy-eyeballs connection failures arrive as an AggregateError of per-address errors.
  if (Array.isArray(s.errors) && s.errors.some(isNetwork)) return true;
  return false;
}

export function absent(e: unknown): boolean {
  return absentAnswer(httpStatus(e), s3Code(e));
}

/** Whether a status and S3 error code say the object is absent (not that the bucket is, nor that the credentials are refused). */
export function absentAnswer(status: number | undefined, code: string | undefined): boolean {
  if (status === 404) return code !== 'NoSuchBucket';
  if (status === 403) return !CREDENTIAL_CODES.has(code ?? '');
  return false;
}

function describeNetworkError(e: unknown): string {
  const s = shape(e);
  if (s.message) return s.message;
  if (Array.isArray(s.errors)) {
    const first = s.errors.map(shape).find((x) => x.message);
    if (first?.message) return first.message;
  }
  return s.code ?? s.name ?? String(e);
}

/** Where a failed S3 request went, for its message and data. */
export interface S3FailureContext {
  /** `s3://bucket/key` (or `s3://bucket`). */
  readonly url: string;
  readonly operation: string;
  readonly endpoint: string;
  readonly bucket: string;
  readonly profile: string | undefined;
  /** Where the credentials came from, in words (`profile 'x'`, `the default AWS credential chain`). */
  readonly credentialsFrom: string;
}

/** Maps an SDK failure to a NixcacheError naming the object, the operation and the endpoint. */
export function s3Failure(context: S3FailureContext, e: unknown, signal?: AbortSignal): NixcacheError {
  if (e instanceof NixcacheError) return e;
  const { url, operation, endpoint, bucket, profile, credentialsFrom } = context;
  const s = shape(e);
  const status = httpStatus(e);
  const code = s3Code(e);
  const server = s.$response?.headers?.server;
  const data = {
    url,
    operation,
    endpoint,
    ...(status !== undefined && { status }),
    ...(code !== undefined && { s3Code: code }),
    ...(server !== undefined && { server }),
    ...(profile !== undefined && { profile }),
  };
  const where = `(endpoint ${endpoint})`;
  const make = (errorCode: ErrorCode, reason: string) =>
    new StoreError(errorCode, `${url}: ${operation} failed: ${reason} ${where}`, data, { cause: e });

  if (signal?.aborted || isAbort(e)) return make('ABORTED', 'aborted');
  if (s.name === 'CredentialsProviderError') {
    return make(
      'IO',
      `no usable AWS credentials from ${credentialsFrom} (${s.message}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ` +
        `~/.aws/credentials, or profile= in the store URL`,
    );
  }
  if (status === undefined) {
    const timeout = sdkTimeoutReason(e, endpoint);
    if (timeout) return make('NETWORK', timeout);
    if (isNetwork(e)) return make('NETWORK', describeNetworkError(e));
    return make('IO', s.message || String(e));
  }
  const detail = s.message && s.message !== code && s.message !== 'UnknownError' ? `: ${s.message}` : '';
  const reason = `HTTP ${status}${code ? ` ${code}` : ''}${detail}`;
  if (code && CREDENTIAL_CODES.has(code)) {
    return make('IO', `the server rejected the credentials from ${credentialsFrom} (${reason})`);
  }
  if (status === 412 || code === 'PreconditionFailed' || code === 'ConditionalRequestConflict') {
    return make('CONFLICT', `precondition failed, the object changed or exists (${reason})`);
  }
  if (status === 501 || code === 'NotImplemented') {
    return make('UNSUPPORTED', `not implemented by the server${server ? ` (${server})` : ''} (${reason})`);
  }
  if (code === 'NoSuchBucket') {
    return make('NOT_FOUND', `bucket '${bucket}' does not exist (${reason})`);
  }
  if (status >= 500 || status === 429 || code === 'SlowDown' || code === 'RequestTimeout') {
    return make('NETWORK', reason);
  }
  return make('IO', reason);
}

/**
 * The continuation token of the page after `page`, undefined when it was the last. A page that
 * says more keys follow but gives no token, or gives back the token it was asked with, would end
 * a listing early (a garbage collector would then miss live narinfos) or never: NETWORK, naming
 * the listing and the endpoint.
 *
 * @example token = nextListToken(page, token, { url: 's3://cache/', endpoint })
 */
export function nextListToken(
  page: { readonly IsTruncated?: boolean; readonly NextContinuationToken?: string },
  asked: string | undefined,
  where: { readonly url: string; readonly endpoint: string },
): string | undefined {
  if (!page.IsTruncated) return undefined;
  const token = page.NextContinuationToken;
  if (token && token !== asked) return token;
  throw listingNeverEnds(
    'ListObjectsV2',
    !token
      ? 'the server says more keys follow but gives no continuation token'
      : 'the server gave back the continuation token it was asked with (the listing would never end)',
    where,
  );
}

/** Where a ListMultipartUploads page leaves off: its key and upload-id markers. */
export interface UploadMarkers {
  readonly key: string;
  readonly uploadId: string | undefined;
}

/**
 * The markers of the ListMultipartUploads page after `page`, undefined when it was the last. As
 * for {@link nextListToken}: a page that says more follow but gives no key marker, or gives back
 * the markers it was asked with, is NETWORK (the listing would end early, or loop for ever).
 *
 * @example markers = nextUploadMarkers(page, markers, { url: 's3://cache/', endpoint })
 */
export function nextUploadMarkers(
  page: {
    readonly IsTruncated?: boolean;
    readonly NextKeyMarker?: string;
    readonly NextUploadIdMarker?: string;
  },
  asked: UploadMarkers | undefined,
  where: { readonly url: string; readonly endpoint: string },
): UploadMarkers | undefined {
  if (!page.IsTruncated) return undefined;
  const key = page.NextKeyMarker;
  const uploadId = page.NextUploadIdMarker || undefined;
  if (key && (key !== asked?.key || uploadId !== asked.uploadId)) return { key, uploadId };
  throw listingNeverEnds(
    'ListMultipartUploads',
    !key
      ? 'the server says more uploads follow but gives no key marker'
      : 'the server gave back the markers it was asked with (the listing would never end)',
    where,
  );
}

function listingNeverEnds(
  operation: string,
  problem: string,
  where: { readonly url: string; readonly endpoint: string },
): StoreError {
  return new StoreError(
    'NETWORK',
    `${where.url}: ${operation} failed: ${problem} (endpoint ${where.endpoint})`,
    {
      url: where.url,
      operation,
      endpoint: where.endpoint,
    },
  );
}
