/**
 * How the s3:// driver talks to S3: the AWS SDK client's settings for a store URL (region,
 * path-style addressing, credentials, timeouts, keep-alive sockets, retries, checksums only when
 * required), the credentials its direct requests sign with, and the Content-MD5 some bucket
 * administration requests need.
 */
import { createHash } from 'node:crypto';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { SigV4Credentials } from './s3-sigv4.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type NetworkTimeouts } from './timeouts.js';
import type { StoreConfig } from './url.js';

/** Default idle limit of an S3 connection (Nix's `stalled-download-timeout`, 300 s). */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** Default sockets per host of an S3 client: above the 64 narinfo requests a whole-cache run keeps in flight. */
export const DEFAULT_MAX_SOCKETS = 96;

/** The settings of the SDK client (and of direct requests); timeouts per attempt. */
export interface S3ClientOptions extends NetworkTimeouts {
  /** Explicit credentials (or a provider) instead of the SDK's default chain / `profile=`. */
  readonly credentials?: S3ClientConfig['credentials'];
  /** Attempts per request, including the first (SDK default 3). */
  readonly maxAttempts?: number;
  /**
   * A request fails (NETWORK) when its connection carries no bytes for this long (default 300 s,
   * Nix's `stalled-download-timeout`); 0 disables it. Without it a server that stalls mid-body
   * would hang a download forever.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Sockets per host (default {@link DEFAULT_MAX_SOCKETS}); connections are kept alive and
   * reused. Whole-cache runs keep tens of narinfo GETs/HEADs in flight.
   */
  readonly maxSockets?: number;
}

/** The S3Client settings for a store URL (exported for tests and for callers building their own client). */
export function s3ClientConfig(
  config: StoreConfig,
  options: Omit<S3ClientOptions, 'firstByteTimeoutMs'> = {},
): S3ClientConfig {
  const forcePathStyle =
    config.addressingStyle === 'path' ||
    (config.addressingStyle === 'auto' &&
      (config.endpoint !== undefined || (config.bucket ?? '').includes('.')));
  return {
    region: config.region,
    ...(config.endpoint !== undefined && { endpoint: config.endpoint }),
    forcePathStyle,
    ...(options.credentials !== undefined
      ? { credentials: options.credentials }
      : config.profile !== undefined && { profile: config.profile }),
    ...(options.maxAttempts !== undefined && { maxAttempts: options.maxAttempts }),
    // A host that drops SYNs fails after connectTimeoutMs instead of hanging, and a connection
    // that stalls (no bytes either way) fails after idleTimeoutMs; a transfer that keeps moving
    // has no time limit (a slow compressor may feed a long upload): callers bound those with a
    // signal. Bodyless requests pass a per-request `requestTimeout` (first byte, see
    // timeouts.ts), which must throw rather than only log.
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      socketTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      // Keep-alive connections, reused across requests, enough for the requests a whole-cache
      // run keeps in flight (the SDK's default is 50).
      httpAgent: { keepAlive: true, maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS },
    },
    // The SDK's standard retry strategy retries 500/502/503/504, throttling codes (SlowDown,
    // 503) and connection resets with exponential backoff and jitter (a longer base delay for
    // throttling), up to maxAttempts (default 3) per request.
    retryMode: 'standard',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/**
 * What direct requests sign with: the caller's credentials; else, as the SDK's default chain
 * would find them first, static keys in the environment (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN) when no profile is named (neither `profile=`
 * nor AWS_PROFILE), which needs no SDK; else the SDK client's own provider (profiles, SSO,
 * instance roles, refreshes).
 */
export function directCredentials(
  config: StoreConfig,
  given: S3ClientOptions['credentials'],
  client: () => Promise<S3Client>,
): () => Promise<SigV4Credentials> {
  if (given !== undefined) return async () => (typeof given === 'function' ? given() : given);
  const env = process.env;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (config.profile === undefined && !env.AWS_PROFILE && accessKeyId && secretAccessKey) {
    const sessionToken = env.AWS_SESSION_TOKEN;
    const fromEnv: SigV4Credentials = { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) };
    return async () => fromEnv;
  }
  return async () => (await client()).config.credentials();
}

/**
 * Adds Content-MD5 to a command whose body is small XML/JSON. DeleteObjects, PutBucketPolicy
 * and PutBucketLifecycleConfiguration require an integrity header; older MinIO releases (and
 * other servers) accept only Content-MD5, not the SDK's x-amz-checksum-crc32. AWS accepts both.
 */
export function withContentMd5<C extends { middlewareStack: { add: (...args: never[]) => unknown } }>(
  command: C,
): C {
  type Args = { request: { headers: Record<string, string>; body?: unknown } };
  const middleware =
    (next: (args: Args) => Promise<unknown>) =>
    async (args: Args): Promise<unknown> => {
      const body = args.request.body;
      if (typeof body === 'string' || body instanceof Uint8Array) {
        args.request.headers['content-md5'] = createHash('md5').update(body).digest('base64');
      }
      return next(args);
    };
  (command.middlewareStack.add as unknown as (m: unknown, o: unknown) => void)(middleware, {
    step: 'build',
    name: 'nixcacheContentMd5',
  });
  return command;
}
