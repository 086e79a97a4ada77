/**
 * Giving the event loop a turn during long runs of work that never waits for it. On a local
 * store every step of a push, copy or gc can finish without real I/O (synchronous reads and
 * writes, in-memory compression), so the promise callbacks that chain the steps ran for seconds
 * without a turn of the event loop: a push of 10,000 small paths to file:// held it for 8.5 s,
 * and Ctrl-C (a signal is delivered on a turn) was only seen when the push had finished. The
 * loops that start work (`forEachBounded`, `createLimit`, the graph's narinfo writes, the
 * filesystem walk) wait for a turn whenever {@link turnDue}: one turn every {@link SLICE_MS} of
 * this thread's work, shared by all of them.
 */

/** Most time a thread works between two turns of its event loop (ms), as far as these loops go. */
export const SLICE_MS = 10;

let sliceStart = performance.now();
/** The turn being waited for: one for all waiters, so that a turn resets the clock once. */
let next: Promise<void> | undefined;

const schedule: (f: () => void) => void =
  typeof setImmediate === 'function' ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

/**
 * Resolves on a later turn of the event loop (after its timers, I/O and signals). Every caller
 * until then gets the same promise.
 *
 * @example await turn()
 */
export function turn(): Promise<void> {
  next ??= new Promise((resolve) =>
    schedule(() => {
      next = undefined;
      sliceStart = performance.now();
      resolve();
    }),
  );
  return next;
}

/**
 * True when {@link SLICE_MS} have passed since the last turn. Waiters loop on it
 * (`while (turnDue()) await turn();`): many may wake from one turn, and those that find the
 * next slice spent already wait for the turn after.
 *
 * @example while (turnDue()) await turn();
 */
export function turnDue(): boolean {
  return performance.now() - sliceStart >= SLICE_MS;
}
