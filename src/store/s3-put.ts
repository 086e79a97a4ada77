/**
 * PutObject for the s3:// driver (s3.ts): the request shape chosen from the size (in memory
 * then one PutObject, the direct one of s3-direct.ts when it serves the endpoint; one streamed
 * PutObject; a multipart upload), a body that fails or an abort leaving no object, and the
 * errors named as the backend names them.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { PutObjectCommandInput, S3Client, StorageClass } from '@aws-sdk/client-s3';
import { NixcacheError, StoreError } from '../errors.js';
import { type ByteSource, toAsyncIterable } from '../internal/iter.js';
import type { ObjectInfo, PutOptions } from './backend.js';
import { DIRECT_PUT_MAX_BYTES, type DirectS3 } from './s3-direct.js';
import { httpStatus, s3Code, shape } from './s3-errors.js';
import { loadS3Upload, s3Sdk } from './s3-sdk.js';
import type { StoreConfig } from './url.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Largest object a single PutObject may write (AWS limit; Nix uses the same bound). */
export const S3_MAX_SINGLE_PUT = 5 * GiB;
/** Most parts a multipart upload may have. */
export const S3_MAX_PARTS = 10_000;
/** Smallest part size S3 accepts (except for the last part). */
export const S3_MIN_PART_SIZE = 5 * MiB;

/** What a put needs of its backend. */
export interface S3PutContext {
  /** The backend's SDK client, built (and the SDK loaded) on first use. */
  readonly client: () => Promise<S3Client>;
  readonly bucket: string;
  /** The full object key (prefix included). */
  readonly objectKey: string;
  /** `s3://bucket/key`, for messages. */
  readonly url: string;
  readonly endpointUrl: string;
  readonly config: StoreConfig;
  readonly direct: DirectS3 | undefined;
  /** Parts of a multipart upload in flight. */
  readonly queueSize: number;
  readonly warn: (message: string) => void;
  /** The backend's mapping of an SDK failure to a NixcacheError for this object. */
  readonly fail: (operation: string, e: unknown, signal?: AbortSignal) => NixcacheError;
}

/**
 * A controller that aborts when `outer` does (or when aborted itself), and `dispose()` to detach
 * from `outer` afterwards, so a long-lived caller signal does not collect one listener per call.
 */
function linkSignal(outer: AbortSignal | undefined): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  if (!outer) return { controller, dispose() {} };
  if (outer.aborted) {
    controller.abort(outer.reason);
    return { controller, dispose() {} };
  }
  const onAbort = () => controller.abort(outer.reason);
  outer.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => outer.removeEventListener('abort', onAbort) };
}

/** Rejects with the signal's reason when it aborts before `promise` settles. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** S3 wants ETags quoted in If-Match; accept both forms from callers. */
function quoteEtag(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

/**
 * Writes an object, choosing the request shape from the size (`options.size`, or the length of
 * a Uint8Array body):
 * - known size up to multipart-chunk-size (5 MiB by default): read into memory first, then one
 *   PutObject with Content-MD5, so a body that fails never starts a request;
 * - known size up to the multipart threshold (100 MiB; or up to 5 GiB when `multipart-upload`
 *   is off, as in Nix): one PutObject streaming the body with its Content-Length;
 * - larger or unknown size: a multipart upload (lib-storage) with parts of
 *   max(multipart-chunk-size, size / 10000) and at most `queueSize` parts in flight, so memory
 *   stays near (queueSize + 1) × part size. Unknown sizes use multipart-chunk-size parts (at most
 *   10,000 × that: 48.8 GiB with 5 MiB parts); a body shorter than one part becomes one PutObject.
 *
 * A body that errors or an abort leaves no object under the key: the streamed request is cut
 * short (S3 refuses a body shorter than its Content-Length; s3rver alone stores the partial
 * body) and a multipart upload is never completed and is aborted (a server that refuses the
 * abort, like s3rver, only produces a warning).
 *
 * @throws {NixcacheError} CONFLICT when `ifMatch`/`ifNoneMatch` does not hold (HTTP 412);
 *   NETWORK (connection, timeout, 5xx), IO (other HTTP errors, credentials), ABORTED; the body
 *   source's own NixcacheError unchanged (other source errors as IO with the cause);
 *   BAD_ARGUMENT when the body's length differs from `size`.
 * @example await putObject(ctx, chunks, { contentType: 'application/x-nix-nar', size }) // S3Backend.put
 */
export async function putObject(
  ctx: S3PutContext,
  body: ByteSource,
  options: PutOptions,
): Promise<ObjectInfo> {
  const size = options.size ?? (body instanceof Uint8Array ? body.length : undefined);
  const config = ctx.config;
  const bufferLimit = Math.max(config.multipartChunkSize, S3_MIN_PART_SIZE);
  const mode: 'buffered' | 'streamed' | 'multipart' =
    size === undefined ||
    size > S3_MAX_SINGLE_PUT ||
    (config.multipartUpload && size > config.multipartThreshold)
      ? 'multipart'
      : size <= bufferLimit
        ? 'buffered'
        : 'streamed';
  const link = linkSignal(options.signal);
  const internal = link.controller;
  const signal = internal.signal;
  let sourceError: unknown;
  let received = 0;
  const source = toAsyncIterable(body);
  const url = ctx.url;
  async function* guarded(): AsyncGenerator<Uint8Array> {
    const it = source[Symbol.asyncIterator]();
    let done = false;
    try {
      for (;;) {
        signal.throwIfAborted();
        const r = await raceAbort(it.next(), signal);
        if (r.done) {
          done = true;
          break;
        }
        received += r.value.length;
        if (size !== undefined && received > size) {
          throw new NixcacheError(
            'BAD_ARGUMENT',
            `${url}: the body is longer than the declared size ${size}`,
            {
              url,
              expected: String(size),
            },
          );
        }
        yield r.value;
      }
      if (size !== undefined && received !== size) {
        throw new NixcacheError(
          'BAD_ARGUMENT',
          `${url}: the body ended after ${received} bytes, but its declared size is ${size}`,
          { url, expected: String(size), actual: String(received) },
        );
      }
    } catch (e) {
      if (!signal.aborted) {
        sourceError = e;
        // A failing body must abort the request: a piped stream's error does not end it.
        internal.abort(e);
      }
      throw e;
    } finally {
      if (!done) void Promise.resolve(it.return?.()).catch(() => {});
    }
  }
  let readable: Readable | undefined;
  const stream = () => {
    readable = Readable.from(guarded());
    // Failures are kept in sourceError and surface through the request; without a listener a
    // piped stream's 'error' event would be unhandled.
    readable.on('error', () => {});
    return readable;
  };

  const params: PutObjectCommandInput = {
    Bucket: ctx.bucket,
    Key: ctx.objectKey,
    ContentType: options.contentType,
    ...(options.contentEncoding && { ContentEncoding: options.contentEncoding }),
    ...(config.storageClass && { StorageClass: config.storageClass as StorageClass }),
    ...(options.ifMatch !== undefined && { IfMatch: quoteEtag(options.ifMatch) }),
    ...(options.ifNoneMatch && { IfNoneMatch: '*' }),
    ...(size !== undefined && { ContentLength: size }),
  };
  const failed = { operation: mode === 'multipart' ? 'multipart upload' : 'PutObject' };
  try {
    options.signal?.throwIfAborted();
    let etag: string | undefined;
    if (mode === 'buffered') {
      // A whole body of the declared size needs no reading (nor a copy).
      const bytes =
        body instanceof Uint8Array && body.length === size ? body : await collect(guarded(), size ?? 0);
      if (bytes === body) received = bytes.length;
      const fast =
        ctx.direct && bytes.length <= DIRECT_PUT_MAX_BYTES
          ? await ctx.direct.put({
              path: `${ctx.bucket}/${params.Key}`,
              body: bytes,
              headers: directPutHeaders(params),
              signal,
            })
          : undefined;
      if (fast?.preconditionFailed) {
        const { code, message } = fast.preconditionFailed;
        throw { name: code, Code: code, message, $metadata: { httpStatusCode: 412 } };
      }
      if (fast) return { size: received, ...(fast.etag !== '' && { etag: fast.etag }) };
      const client = await ctx.client();
      const { PutObjectCommand } = s3Sdk();
      const res = await client.send(
        new PutObjectCommand({
          ...params,
          Body: bytes,
          ContentMD5: createHash('md5').update(bytes).digest('base64'),
        }),
        { abortSignal: signal },
      );
      etag = res.ETag;
    } else if (mode === 'streamed') {
      const client = await ctx.client();
      const { PutObjectCommand } = s3Sdk();
      const res = await client.send(new PutObjectCommand({ ...params, Body: stream() }), {
        abortSignal: signal,
      });
      etag = res.ETag;
    } else {
      const partSize = Math.max(bufferLimit, Math.ceil((size ?? 0) / S3_MAX_PARTS));
      const client = uploadClient(await ctx.client(), ctx, signal, failed);
      const { Upload } = await loadS3Upload();
      const upload = new Upload({
        client,
        params: { ...params, Body: stream() },
        partSize,
        queueSize: ctx.queueSize,
        leavePartsOnError: false,
      });
      const res = await upload.done();
      etag = res.ETag;
    }
    return { size: received, ...(etag !== undefined && { etag }) };
  } catch (e) {
    if (options.signal?.aborted) throw ctx.fail(failed.operation, e, options.signal);
    if (sourceError !== undefined) {
      if (sourceError instanceof NixcacheError) throw sourceError;
      const operation = failed.operation;
      throw new StoreError(
        'IO',
        `${url}: ${operation} failed: reading the body failed: ${shape(sourceError).message} (endpoint ${ctx.endpointUrl})`,
        { url, operation, endpoint: ctx.endpointUrl },
        { cause: sourceError },
      );
    }
    throw ctx.fail(failed.operation, e);
  } finally {
    link.dispose();
    // After a failure nobody reads the body any more: close it so the source can clean up.
    readable?.destroy();
  }
}

/**
 * The client lib-storage talks through: every request carries the put's signal, the name of
 * a failing request is noted for the error message, and a failed AbortMultipartUpload (s3rver
 * answers 405) becomes a warning so the original error survives.
 */
function uploadClient(
  client: S3Client,
  ctx: S3PutContext,
  signal: AbortSignal,
  failed: { operation: string },
): S3Client {
  const { AbortMultipartUploadCommand } = s3Sdk();
  const warn = ctx.warn;
  const url = ctx.url;
  const endpoint = ctx.endpointUrl;
  const sendAny = client.send.bind(client) as (
    c: unknown,
    o?: { abortSignal?: AbortSignal },
  ) => Promise<unknown>;
  const send = async (command: unknown): Promise<unknown> => {
    if (command instanceof AbortMultipartUploadCommand) {
      try {
        // Not the put's signal: the abort must still go out after the caller aborted.
        return await sendAny(command, { abortSignal: AbortSignal.timeout(30_000) });
      } catch (e) {
        const s = shape(e);
        const status = httpStatus(e);
        warn(
          `${url}: could not abort multipart upload ${command.input.UploadId ?? ''} ` +
            `(${status !== undefined ? `HTTP ${status} ` : ''}${s3Code(e) ?? ''}: ${s.message ?? ''}) ` +
            `(endpoint ${endpoint}); its parts stay until a lifecycle rule or an operator removes them`,
        );
        return {};
      }
    }
    try {
      return await sendAny(command, { abortSignal: signal });
    } catch (e) {
      failed.operation = (command as object).constructor.name.replace(/Command$/, '');
      throw e;
    }
  };
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'send') return send;
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** The headers of a PutObject's parameters, for {@link DirectS3}. */
function directPutHeaders(params: PutObjectCommandInput): Record<string, string> {
  return {
    ...(params.ContentType !== undefined && { 'content-type': params.ContentType }),
    ...(params.ContentEncoding !== undefined && { 'content-encoding': params.ContentEncoding }),
    ...(params.StorageClass !== undefined && { 'x-amz-storage-class': params.StorageClass }),
    ...(params.IfMatch !== undefined && { 'if-match': params.IfMatch }),
    ...(params.IfNoneMatch !== undefined && { 'if-none-match': params.IfNoneMatch }),
  };
}

/** Reads a stream into one buffer of the expected size. */
async function collect(source: AsyncIterable<Uint8Array>, expected: number): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  let at = 0;
  for await (const chunk of source) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
