import { turn, turnDue } from '../internal/turn.js';

/**
 * A counting semaphore: at most `n` of the wrapped calls run at once, in arrival order. A call
 * that starts when the event loop is due a turn waits for it first (internal/turn.ts).
 */
export function createLimit(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    // A released slot passes straight to the next waiter, so `active` never exceeds n.
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      while (turnDue()) await turn();
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
