/**
 * Retrying transient store failures (connection resets, 5xx, SlowDown) with exponential backoff.
 * Only NETWORK errors are retried: a conflict, a corrupt object or a bad argument is final.
 */
import { NixcacheError } from '../errors.js';

export interface RetryOptions {
  /** Attempts after the first (default 4). */
  readonly retries?: number;
  /** First delay in ms, doubled each time (default 250). */
  readonly baseDelayMs?: number;
  readonly signal?: AbortSignal;
}

function isTransient(e: unknown): boolean {
  return e instanceof NixcacheError && e.code === 'NETWORK';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new NixcacheError('ABORTED', 'aborted while waiting to retry', {}, { cause: signal.reason }));
      },
      { once: true },
    );
  });
}

/**
 * Runs `fn` until it succeeds, retrying transient failures.
 *
 * @throws the last error when every attempt failed, or at once for a non-transient error.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const retries = options.retries ?? 4;
  const base = options.baseDelayMs ?? 250;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= retries || !isTransient(e) || options.signal?.aborted) throw e;
      await sleep(base * 2 ** attempt * (0.5 + Math.random() / 2), options.signal);
    }
  }
}
