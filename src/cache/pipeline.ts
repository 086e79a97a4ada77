/**
 * The engine of every whole-cache operation (verify, sign, copy, gc over a listing): work items
 * are pulled from their source only when a slot is free, so a million-key listing is consumed
 * with back-pressure instead of being queued in memory; at most `parallelism` items run at once;
 * nothing per item is retained once its callback has returned; the event loop gets a turn at
 * least every few milliseconds (internal/turn.ts).
 */
import { NixcacheError } from '../errors.js';
import { turn, turnDue } from '../internal/turn.js';

export interface BoundedOptions {
  /** Items processed at once (at least 1). */
  readonly parallelism: number;
  /** Stops pulling new items; running ones see the same signal through their own I/O. */
  readonly signal?: AbortSignal;
}

/**
 * Runs `fn` on every item of `source`, at most `parallelism` at a time, pulling the next item only
 * when a slot frees up. The first error thrown by `fn` or by the source stops the run (no new
 * items are started, the source is closed) and is rethrown once the running items have settled;
 * callers that want per-item failures catch inside `fn`.
 *
 * @throws whatever `fn` or the source throws first; NixcacheError ABORTED when `signal` aborts.
 * @example await forEachBounded(store.listNarInfos(), { parallelism: 32 }, async (hash) => check(hash))
 */
export async function forEachBounded<T>(
  source: AsyncIterable<T> | Iterable<T>,
  options: BoundedOptions,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const { signal } = options;
  const parallelism = Math.max(1, Math.floor(options.parallelism));
  const iterator =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (source as Iterable<T>)[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  let exhausted = false;
  // Pulls are serialised: a generator must not be asked for its next item while it is producing one.
  let pulling: Promise<unknown> = Promise.resolve();
  const pull = (): Promise<IteratorResult<T>> => {
    const next = pulling.then(() => iterator.next());
    pulling = next.catch(() => undefined);
    return next;
  };
  const worker = async (): Promise<void> => {
    while (!failure && !exhausted) {
      // Items that finish without waiting (a local store) would otherwise keep the event loop
      // from its timers and signals (Ctrl-C) until the whole run is over.
      while (turnDue()) await turn();
      if (signal?.aborted) {
        failure ??= { error: abortError(signal) };
        return;
      }
      let step: IteratorResult<T>;
      try {
        step = await pull();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (step.done) {
        exhausted = true;
        return;
      }
      if (failure) return;
      try {
        await fn(step.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: parallelism }, worker));
  if (!exhausted) await Promise.resolve(iterator.return?.()).catch(() => undefined);
  if (failure) throw failure.error;
}

/** The error a whole-cache run stops with when its signal aborts. */
export function abortError(signal: AbortSignal): NixcacheError {
  return new NixcacheError('ABORTED', 'the operation was aborted', {}, { cause: signal.reason });
}
