/**
 * Bucket housekeeping for the s3:// driver, apart from the object reads and writes of `s3.ts`:
 * listings with size and LastModified (ListObjectsV2), batch deletes (DeleteObjects, at most 1000
 * keys a request, per-key errors checked), incomplete multipart uploads (ListMultipartUploads,
 * AbortMultipartUpload: the actions a usual writer policy grants), and the bucket settings of
 * `initCache`: anonymous read (bucket policy) and expiry (lifecycle rule), with an UNSUPPORTED
 * error naming the servers that have them. Loaded only through `s3.ts`, which is itself loaded
 * only for s3:// URLs.
 */
import type { LifecycleRule, S3Client } from '@aws-sdk/client-s3';
import { NixcacheError, StoreError } from '../errors.js';
import type { DeleteManyResult, ListedObject, ListOptions, PendingUpload, ReadOptions } from './backend.js';
import { withContentMd5 } from './s3-client.js';
import {
  CREDENTIAL_CODES,
  httpStatus,
  nextListToken,
  nextUploadMarkers,
  s3Code,
  type UploadMarkers,
} from './s3-errors.js';
import { s3Sdk } from './s3-sdk.js';

/** Statement id of the anonymous-read statement nixcache adds to a bucket policy. */
export const PUBLIC_READ_SID = 'NixcachePublicRead';
/** Id of the lifecycle rule nixcache adds for expiry. */
export const EXPIRY_RULE_ID = 'nixcache-expiry';
/** Most keys one DeleteObjects request may name (S3 limit). */
export const S3_MAX_DELETE_KEYS = 1000;

/**
 * A ListObjectsV2 page in the SDK's shape; LastModified is a Date from the SDK and milliseconds
 * since the epoch from a direct request.
 */
export interface S3ListPage {
  readonly Contents?: readonly {
    readonly Key?: string;
    readonly Size?: number;
    readonly LastModified?: Date | number;
  }[];
  readonly IsTruncated?: boolean;
  readonly NextContinuationToken?: string;
}

/** What the housekeeping functions need from an S3Backend. */
export interface S3HousekeepingContext {
  /** The SDK client (the SDK loads on first use). */
  readonly client: () => Promise<S3Client>;
  readonly bucket: string;
  /** Store prefix inside the bucket, '' for none. */
  readonly prefix: string;
  /** Maps an SDK failure to a NixcacheError naming the object and operation. */
  fail(operation: string, key: string | undefined, e: unknown, signal?: AbortSignal): NixcacheError;
  /** The endpoint requests go to, and `s3://bucket`, for messages. */
  readonly endpointUrl: string;
  readonly bucketUrl: string;
  /** Per-request options every call passes to the SDK (the first-byte timeout). */
  readonly requestOptions: { readonly requestTimeout?: number };
  /**
   * One ListObjectsV2 page of the keys under a store-relative prefix, with each object's Size and
   * LastModified (S3Backend sends it directly where it can, else through the SDK); NETWORK, IO,
   * NOT_FOUND or ABORTED errors.
   */
  readonly listPage: (
    prefix: string,
    delimiter: string | undefined,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ) => Promise<S3ListPage>;
}

function base(ctx: S3HousekeepingContext): string {
  return ctx.prefix ? `${ctx.prefix}/` : '';
}

/**
 * Every object (relative to the store prefix) under `prefix`, with Size and LastModified, page by
 * page. `recursive: false` stops at the next `/`.
 *
 * @throws {NixcacheError} NETWORK, IO, NOT_FOUND (no such bucket), ABORTED.
 * @example for await (const o of listS3Objects(ctx, 'nar/')) total += o.size
 */
export async function* listS3Objects(
  ctx: S3HousekeepingContext,
  prefix: string,
  options: ListOptions = {},
): AsyncGenerator<ListedObject> {
  const signal = options.signal;
  const b = base(ctx);
  const delimiter = options.recursive === false ? '/' : undefined;
  let token: string | undefined;
  do {
    const page = await ctx.listPage(prefix, delimiter, token, signal);
    for (const item of page.Contents ?? []) {
      if (!item.Key?.startsWith(b)) continue;
      const modified = item.LastModified;
      yield {
        key: item.Key.slice(b.length),
        size: item.Size ?? 0,
        lastModified: typeof modified === 'number' ? modified : (modified?.getTime() ?? 0),
      };
    }
    token = nextListToken(page, token, { url: `${ctx.bucketUrl}/${b}${prefix}`, endpoint: ctx.endpointUrl });
  } while (token !== undefined);
}

/**
 * Deletes keys with DeleteObjects (Quiet), up to 1000 a request; keys the server lists under
 * `Errors` are returned as errors, every other key as deleted (S3 reports absent keys as deleted).
 *
 * @throws {NixcacheError} when a whole request fails: NETWORK, IO, UNSUPPORTED, ABORTED.
 * @example const { errors } = await deleteS3Objects(ctx, ['a.narinfo', 'a.ls'])
 */
export async function deleteS3Objects(
  ctx: S3HousekeepingContext,
  keys: readonly string[],
  options: ReadOptions = {},
): Promise<DeleteManyResult> {
  const signal = options.signal;
  const b = base(ctx);
  const deleted: string[] = [];
  const errors: { key: string; code: string; message: string }[] = [];
  for (let at = 0; at < keys.length; at += S3_MAX_DELETE_KEYS) {
    const chunk = keys.slice(at, at + S3_MAX_DELETE_KEYS);
    let res: { Errors?: { Key?: string; Code?: string; Message?: string }[] };
    try {
      signal?.throwIfAborted();
      res = await (await ctx.client()).send(
        withContentMd5(
          new (s3Sdk().DeleteObjectsCommand)({
            Bucket: ctx.bucket,
            Delete: { Objects: chunk.map((k) => ({ Key: b + k })), Quiet: true },
          }),
        ),
        { abortSignal: signal, ...ctx.requestOptions },
      );
    } catch (e) {
      throw ctx.fail('DeleteObjects', chunk[0], e, signal);
    }
    const refused = new Map<string, { code: string; message: string }>();
    for (const err of res.Errors ?? []) {
      if (!err.Key?.startsWith(b)) continue;
      refused.set(err.Key.slice(b.length), { code: err.Code ?? 'Error', message: err.Message ?? '' });
    }
    for (const key of chunk) {
      const err = refused.get(key);
      if (err) errors.push({ key, ...err });
      else deleted.push(key);
    }
  }
  return { deleted, errors };
}

/**
 * Incomplete multipart uploads under the store prefix (ListMultipartUploads, paginated).
 *
 * @throws {NixcacheError} UNSUPPORTED when the server lacks it (s3rver answers 501); NETWORK, IO, ABORTED.
 * @example for await (const u of listS3MultipartUploads(ctx)) console.log(u.key, new Date(u.initiated))
 */
export async function* listS3MultipartUploads(
  ctx: S3HousekeepingContext,
  options: ReadOptions = {},
): AsyncGenerator<PendingUpload> {
  const signal = options.signal;
  const b = base(ctx);
  let markers: UploadMarkers | undefined;
  for (;;) {
    let page: {
      Uploads?: { Key?: string; UploadId?: string; Initiated?: Date }[];
      IsTruncated?: boolean;
      NextKeyMarker?: string;
      NextUploadIdMarker?: string;
    };
    try {
      signal?.throwIfAborted();
      page = await (await ctx.client()).send(
        new (s3Sdk().ListMultipartUploadsCommand)({
          Bucket: ctx.bucket,
          ...(b && { Prefix: b }),
          ...(markers && { KeyMarker: markers.key }),
          ...(markers?.uploadId !== undefined && { UploadIdMarker: markers.uploadId }),
        }),
        { abortSignal: signal, ...ctx.requestOptions },
      );
    } catch (e) {
      throw ctx.fail('ListMultipartUploads', undefined, e, signal);
    }
    for (const u of page.Uploads ?? []) {
      if (!u.Key?.startsWith(b) || u.UploadId === undefined) continue;
      yield { key: u.Key.slice(b.length), uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 };
    }
    markers = nextUploadMarkers(page, markers, { url: `${ctx.bucketUrl}/${b}`, endpoint: ctx.endpointUrl });
    if (markers === undefined) return;
  }
}

/**
 * Aborts one multipart upload; one that is already gone (NoSuchUpload) is fine.
 *
 * @throws {NixcacheError} UNSUPPORTED (s3rver answers 405), NETWORK, IO, ABORTED.
 * @example await abortS3MultipartUpload(ctx, upload)
 */
export async function abortS3MultipartUpload(
  ctx: S3HousekeepingContext,
  upload: PendingUpload,
  options: ReadOptions = {},
): Promise<void> {
  const signal = options.signal;
  try {
    signal?.throwIfAborted();
    await (await ctx.client()).send(
      new (s3Sdk().AbortMultipartUploadCommand)({
        Bucket: ctx.bucket,
        Key: base(ctx) + upload.key,
        UploadId: upload.uploadId,
      }),
      { abortSignal: signal, ...ctx.requestOptions },
    );
  } catch (e) {
    const code = (e as { Code?: string; name?: string })?.Code ?? (e as { name?: string })?.name;
    if (!signal?.aborted && code === 'NoSuchUpload') return;
    throw ctx.fail('AbortMultipartUpload', upload.key, e, signal);
  }
}

/**
 * Builds the anonymous-read bucket policy statement for `bucket`/`prefix` (the shape AWS documents
 * for "granting read-only permission to anonymous users", and what MinIO's `mc anonymous set
 * download` writes for objects).
 *
 * @example publicReadStatement('cache', '') // { Sid: 'NixcachePublicRead', …, Resource: ['arn:aws:s3:::cache/*'] }
 */
export function publicReadStatement(bucket: string, prefix: string): Record<string, unknown> {
  return {
    Sid: PUBLIC_READ_SID,
    Effect: 'Allow',
    Principal: { AWS: ['*'] },
    Action: ['s3:GetObject'],
    Resource: [`arn:aws:s3:::${bucket}/${prefix ? `${prefix}/` : ''}*`],
  };
}

function unsupported(
  ctx: S3HousekeepingContext,
  e: NixcacheError,
  feature: string,
  supportedBy: string,
): NixcacheError {
  if (e.code !== 'UNSUPPORTED') return e;
  const server = typeof e.data.server === 'string' ? `${e.data.server} at ` : '';
  return new StoreError(
    'UNSUPPORTED',
    `${ctx.bucketUrl}: ${feature} is not implemented by the S3 server at ${server}${ctx.endpointUrl} ` +
      `(${String(e.data.operation)} answered HTTP ${String(e.data.status ?? '?')} ${String(e.data.s3Code ?? '')}). ` +
      supportedBy,
    { ...e.data, feature },
    { cause: e },
  );
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
export async function setS3PublicRead(ctx: S3HousekeepingContext, options: ReadOptions = {}): Promise<void> {
  const signal = options.signal;
  const statements: unknown[] = [];
  try {
    signal?.throwIfAborted();
    const res = await (await ctx.client()).send(
      new (s3Sdk().GetBucketPolicyCommand)({ Bucket: ctx.bucket }),
      {
        abortSignal: signal,
        ...ctx.requestOptions,
      },
    );
    if (res.Policy) {
      const existing = JSON.parse(res.Policy) as { Statement?: unknown };
      const list = Array.isArray(existing.Statement)
        ? existing.Statement
        : existing.Statement
          ? [existing.Statement]
          : [];
      for (const s of list) if ((s as { Sid?: unknown }).Sid !== PUBLIC_READ_SID) statements.push(s);
    }
  } catch (e) {
    // NoSuchBucketPolicy (404): nothing to keep. A server without policies (501; s3rver: 405)
    // gets the PUT below, whose answer makes the clear error. Credentials, 403 (we could not
    // keep the other statements) and network failures stop here.
    if (!mayIgnoreGetFailure(ctx, e, signal) && !(e instanceof SyntaxError)) {
      throw ctx.fail('GetBucketPolicy', undefined, e, signal);
    }
  }
  statements.push(publicReadStatement(ctx.bucket, ctx.prefix));
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: statements });
  try {
    await (await ctx.client()).send(
      withContentMd5(new (s3Sdk().PutBucketPolicyCommand)({ Bucket: ctx.bucket, Policy: policy })),
      {
        abortSignal: signal,
        ...ctx.requestOptions,
      },
    );
  } catch (e) {
    const err = ctx.fail('PutBucketPolicy', undefined, e, signal);
    if (httpStatus(e) === 403 && err.code === 'IO') {
      throw new StoreError(
        'IO',
        `${err.message}. On AWS, new buckets block public bucket policies: turn off BlockPublicPolicy ` +
          `(S3 Block Public Access) for this bucket, or grant s3:PutBucketPolicy`,
        err.data,
        { cause: e },
      );
    }
    throw unsupported(
      ctx,
      err,
      'anonymous read access (a bucket policy, PutBucketPolicy)',
      'Bucket policies work on AWS S3 and MinIO. Cloudflare R2 has none (make a bucket public with an ' +
        'r2.dev subdomain or a custom domain), and Garage has none either (it uses per-key permissions and ' +
        '`garage bucket website --allow` for anonymous reads).',
    );
  }
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
export async function setS3Expiry(
  ctx: S3HousekeepingContext,
  days: number,
  options: ReadOptions = {},
): Promise<void> {
  if (!Number.isSafeInteger(days) || days < 1) {
    throw new NixcacheError('BAD_ARGUMENT', `expiry must be a whole number of days >= 1, got ${days}`, {
      field: 'days',
      actual: String(days),
    });
  }
  const signal = options.signal;
  const rules: LifecycleRule[] = [];
  try {
    signal?.throwIfAborted();
    const res = await (await ctx.client()).send(
      new (s3Sdk().GetBucketLifecycleConfigurationCommand)({ Bucket: ctx.bucket }),
      {
        abortSignal: signal,
        ...ctx.requestOptions,
      },
    );
    for (const r of res.Rules ?? []) if (r.ID !== EXPIRY_RULE_ID) rules.push(r);
  } catch (e) {
    // NoSuchLifecycleConfiguration (404): nothing to keep; see setPublicRead for the rest.
    if (!mayIgnoreGetFailure(ctx, e, signal)) {
      throw ctx.fail('GetBucketLifecycleConfiguration', undefined, e, signal);
    }
  }
  rules.push({
    ID: EXPIRY_RULE_ID,
    Status: 'Enabled',
    // Garage accepts the prefix only inside Filter, never the deprecated Rule/Prefix.
    Filter: { Prefix: ctx.prefix ? `${ctx.prefix}/` : '' },
    Expiration: { Days: days },
  });
  try {
    await (await ctx.client()).send(
      withContentMd5(
        new (s3Sdk().PutBucketLifecycleConfigurationCommand)({
          Bucket: ctx.bucket,
          LifecycleConfiguration: { Rules: rules },
        }),
      ),
      { abortSignal: signal, ...ctx.requestOptions },
    );
  } catch (e) {
    throw unsupported(
      ctx,
      ctx.fail('PutBucketLifecycleConfiguration', undefined, e, signal),
      'expiry of old objects (a lifecycle rule, PutBucketLifecycleConfiguration)',
      'Lifecycle expiration rules work on AWS S3, MinIO, Cloudflare R2 and Garage (Garage: Expiration ' +
        'and AbortIncompleteMultipartUpload only).',
    );
  }
}

/** Whether a failed Get* before a merging Put* may be treated as "nothing to keep". */
function mayIgnoreGetFailure(
  _ctx: S3HousekeepingContext,
  e: unknown,
  signal: AbortSignal | undefined,
): boolean {
  const status = httpStatus(e);
  if (signal?.aborted || status === undefined || status === 403) return false;
  if (CREDENTIAL_CODES.has(s3Code(e) ?? '')) return false;
  return status === 404 || status === 405 || status === 501 || status === 400;
}
