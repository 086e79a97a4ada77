/**
 * Work that never waits for I/O (a local store: synchronous reads and writes, no compression)
 * still lets the event loop run its timers and signals: `forEachBounded` and `createLimit` give
 * it a turn every few milliseconds. Before, a whole run went by in promise callbacks, and a
 * push of 10,000 small paths to file:// saw Ctrl-C only after the last one.
 */
import { describe, expect, it } from 'vitest';
import { createLimit } from '../../src/cache/limit.js';
import { forEachBounded } from '../../src/cache/pipeline.js';

/** About `ms` of work on this thread. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** Counts the items done before a zero-delay timer set at the start could run. */
async function itemsBeforeATimer(run: (item: () => Promise<void>) => Promise<void>): Promise<number> {
  let done = 0;
  let before: number | undefined;
  setTimeout(() => {
    before = done;
  }, 0);
  await run(async () => {
    busy(0.05);
    done++;
  });
  return before ?? done;
}

describe('the event loop gets its turns', () => {
  it('in forEachBounded, whose items never wait', async () => {
    const items = Array.from({ length: 4000 }, (_, i) => i);
    const before = await itemsBeforeATimer((item) => forEachBounded(items, { parallelism: 4 }, item));
    // 4,000 items of 50 µs: 200 ms; a turn comes within about 10 ms.
    expect(before).toBeLessThan(1000);
  });

  it('in forEachBounded over an async source that never waits', async () => {
    async function* source() {
      for (let i = 0; i < 4000; i++) yield i;
    }
    const before = await itemsBeforeATimer((item) => forEachBounded(source(), { parallelism: 2 }, item));
    expect(before).toBeLessThan(1000);
  });

  it('in createLimit, whose calls never wait', async () => {
    const limit = createLimit(2);
    const before = await itemsBeforeATimer(async (item) => {
      await Promise.all(Array.from({ length: 4000 }, () => limit(item)));
    });
    expect(before).toBeLessThan(1000);
  });
});
