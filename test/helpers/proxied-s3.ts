/**
 * s3rver behind the recording proxy (proxy.ts), for tests of the direct S3 requests
 * (src/store/s3-direct.ts): backends opened through the proxy, so a test sees every request,
 * which of them the SDK sent, and can inject faults.
 */
import { S3Backend, type S3BackendOptions } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { type LoopbackProxy, type RecordedRequest, startProxy } from './proxy.js';
import { S3RVER_CREDENTIALS, type S3rverHandle, s3ConfigFor, startS3rver } from './s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface ProxiedS3 {
  readonly s3: S3rverHandle;
  readonly proxy: LoopbackProxy;
  /** A backend on `bucket` (under `prefix`) through the proxy, with s3rver's credentials and 2 attempts. */
  open(bucket: string, options?: S3BackendOptions, prefix?: string): S3Backend;
  /** Closes every backend opened, the proxy and s3rver. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver with `buckets` and the proxy in front of it.
 *
 * @example const t = await startProxiedS3(['cache']); const b = t.open('cache');
 */
export async function startProxiedS3(buckets: string[]): Promise<ProxiedS3> {
  const s3 = await startS3rver({ buckets });
  const proxy = await startProxy({ target: s3.endpoint });
  const backends: S3Backend[] = [];
  return {
    s3,
    proxy,
    open(bucket, options = {}, prefix = '') {
      const b = new S3Backend(parseStoreUrl(s3ConfigFor(proxy.endpoint, bucket, prefix).url), {
        credentials: S3RVER_CREDENTIALS,
        maxAttempts: 2,
        ...options,
      });
      backends.push(b);
      return b;
    },
    async stop() {
      for (const b of backends) await b.close();
      await proxy.close();
      await s3.stop();
    },
  };
}

/** Requests the SDK sent carry its invocation id; direct ones do not. */
export function sentDirect(r: RecordedRequest): boolean {
  return r.headers['amz-sdk-invocation-id'] === undefined;
}
