/**
 * Bucket housekeeping for the s3:// driver, apart from the object reads and writes of `s3.ts`:
 * listings with size and LastModified (ListObjectsV2), batch deletes (DeleteObjects, at most 1000
 * keys a request, per-key errors checked), and incomplete multipart uploads
 * (ListMultipartUploads, AbortMultipartUpload: the actions a usual writer policy grants). Loaded
 * only through `s3.ts`, which is itself loaded only for s3:// URLs.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { NixcacheError } from '../errors.js';
import type { DeleteManyResult, ListedObject, ListOptions, PendingUpload, ReadOptions } from './backend.js';

/** Most keys one DeleteObjects request may name (S3 limit). */
export const S3_MAX_DELETE_KEYS = 1000;

/** What the housekeeping functions need from an S3Backend. */
export interface S3HousekeepingContext {
  readonly client: S3Client;
  readonly bucket: string;
  /** Store prefix inside the bucket, '' for none. */
  readonly prefix: string;
  /** Maps an SDK failure to a NixcacheError naming the object and operation. */
  fail(operation: string, key: string | undefined, e: unknown, signal?: AbortSignal): NixcacheError;
  /** Adds Content-MD5 to a command (DeleteObjects needs an integrity header; old MinIO only takes MD5). */
  withContentMd5<C extends { middlewareStack: { add: (...args: never[]) => unknown } }>(command: C): C;
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
  let token: string | undefined;
  do {
    let page: {
      Contents?: { Key?: string; Size?: number; LastModified?: Date }[];
      IsTruncated?: boolean;
      NextContinuationToken?: string;
    };
    try {
      signal?.throwIfAborted();
      page = await ctx.client.send(
        new ListObjectsV2Command({
          Bucket: ctx.bucket,
          Prefix: b + prefix,
          ...(options.recursive === false && { Delimiter: '/' }),
          ...(token !== undefined && { ContinuationToken: token }),
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      throw ctx.fail('ListObjectsV2', prefix, e, signal);
    }
    for (const item of page.Contents ?? []) {
      if (!item.Key?.startsWith(b)) continue;
      yield {
        key: item.Key.slice(b.length),
        size: item.Size ?? 0,
        lastModified: item.LastModified?.getTime() ?? 0,
      };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
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
      res = await ctx.client.send(
        ctx.withContentMd5(
          new DeleteObjectsCommand({
            Bucket: ctx.bucket,
            Delete: { Objects: chunk.map((k) => ({ Key: b + k })), Quiet: true },
          }),
        ),
        { abortSignal: signal },
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
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    let page: {
      Uploads?: { Key?: string; UploadId?: string; Initiated?: Date }[];
      IsTruncated?: boolean;
      NextKeyMarker?: string;
      NextUploadIdMarker?: string;
    };
    try {
      signal?.throwIfAborted();
      page = await ctx.client.send(
        new ListMultipartUploadsCommand({
          Bucket: ctx.bucket,
          ...(b && { Prefix: b }),
          ...(keyMarker !== undefined && { KeyMarker: keyMarker }),
          ...(uploadIdMarker !== undefined && { UploadIdMarker: uploadIdMarker }),
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      throw ctx.fail('ListMultipartUploads', undefined, e, signal);
    }
    for (const u of page.Uploads ?? []) {
      if (!u.Key?.startsWith(b) || u.UploadId === undefined) continue;
      yield { key: u.Key.slice(b.length), uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 };
    }
    if (!page.IsTruncated || page.NextKeyMarker === undefined) return;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
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
    await ctx.client.send(
      new AbortMultipartUploadCommand({
        Bucket: ctx.bucket,
        Key: base(ctx) + upload.key,
        UploadId: upload.uploadId,
      }),
      { abortSignal: signal },
    );
  } catch (e) {
    const code = (e as { Code?: string; name?: string })?.Code ?? (e as { name?: string })?.name;
    if (!signal?.aborted && code === 'NoSuchUpload') return;
    throw ctx.fail('AbortMultipartUpload', upload.key, e, signal);
  }
}
