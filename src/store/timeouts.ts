/**
 * Timeouts of the network stores (issue 10): a server that never accepts or never answers fails
 * with NETWORK naming the host instead of hanging. Two limits, both per request attempt:
 * connecting (TCP/TLS) and waiting for the first byte of the response (its status line) of a
 * request without a body (GET, HEAD, DELETE, listings). Once a response streams, only the idle
 * limit applies (no bytes for 300 s, Nix's `stalled-download-timeout`), so a slow but moving
 * download or upload has no time limit.
 */
import { StoreError } from '../errors.js';

/** Default connect timeout of http(s):// and s3:// stores. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
/** Default time to wait for a response to start (GET, HEAD, DELETE, listings). */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 30_000;

/** Timeout options shared by the network stores (milliseconds; 0 disables a limit). */
export interface NetworkTimeouts {
  /** TCP/TLS connect limit per attempt (default {@link DEFAULT_CONNECT_TIMEOUT_MS}). */
  readonly connectTimeoutMs?: number;
  /**
   * Limit per attempt from sending a bodyless request to the start of its response, connecting
   * included (default {@link DEFAULT_FIRST_BYTE_TIMEOUT_MS}). S3 requests are retried
   * (`maxAttempts`, 3 by default), so a silent endpoint fails after at most that many times this.
   */
  readonly firstByteTimeoutMs?: number;
}

/** The host (and port) of a URL, for messages. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The error of a request that got no response in time. */
export function firstByteTimeoutError(
  url: string,
  operation: string,
  ms: number,
  cause?: unknown,
): StoreError {
  return new StoreError(
    'NETWORK',
    `${url}: ${operation} failed: no response from ${hostOf(url)} within ${ms / 1000} s (firstByteTimeoutMs)`,
    { url, operation, host: hostOf(url), timeoutMs: ms },
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Runs `start` with a signal that fires after `ms` unless `start` settles first (or when `outer`
 * fires); a timeout becomes {@link firstByteTimeoutError}. The timer stops when `start` settles,
 * so a body that streams afterwards is not cut by it.
 */
export async function withFirstByteTimeout<T>(
  url: string,
  operation: string,
  ms: number,
  outer: AbortSignal | undefined,
  start: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (!(ms > 0)) return start(outer);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('first-byte timeout')), ms);
  const signal = outer ? AbortSignal.any([outer, controller.signal]) : controller.signal;
  try {
    return await start(signal);
  } catch (e) {
    if (controller.signal.aborted && !outer?.aborted) throw firstByteTimeoutError(url, operation, ms, e);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A readable reason for a timeout of the AWS SDK's Node request handler (connect, first byte),
 * naming the host and the option that sets the limit; undefined for any other error.
 */
export function sdkTimeoutReason(e: unknown, endpoint: string): string | undefined {
  const message = (e as { message?: unknown })?.message;
  if (typeof message !== 'string' || !message.includes('@smithy/node-http-handler')) return undefined;
  const ms = /(\d+) ?ms/.exec(message)?.[1];
  const within = ms === undefined ? '' : ` within ${Number(ms) / 1000} s`;
  const host = hostOf(endpoint);
  if (message.includes('requestTimeout')) return `no response from ${host}${within} (firstByteTimeoutMs)`;
  if (message.includes('establish a connection'))
    return `could not connect to ${host}${within} (connectTimeoutMs)`;
  return undefined;
}
