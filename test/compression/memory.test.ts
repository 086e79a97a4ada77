/**
 * Bounded memory: large inputs, generated lazily, stream through compress → decompress while the
 * process's resident set stays within a fixed bound above where it started.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compress, decompress } from '../../src/compression/index.js';
import { lazyStream } from './helpers.js';

const MiB = 1 << 20;

async function roundTrip(
  method: string,
  total: number,
  level?: number,
): Promise<{ growth: number; same: boolean }> {
  // Warm up first, so that codec set-up and the heap's first growth are not counted as growth.
  for await (const _ of decompress(method, compress(method, lazyStream(total >> 2), { level }))) {
    // drain
  }
  const before = process.memoryUsage.rss();
  let peak = before;
  const sourceHash = createHash('sha256');
  async function* source(): AsyncGenerator<Uint8Array> {
    for await (const chunk of lazyStream(total)) {
      sourceHash.update(chunk);
      yield chunk;
    }
  }
  const outHash = createHash('sha256');
  let n = 0;
  for await (const chunk of decompress(method, compress(method, source(), { level }))) {
    outHash.update(chunk);
    if (++n % 16 === 0) peak = Math.max(peak, process.memoryUsage.rss());
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  return { growth: peak - before, same: sourceHash.digest('hex') === outHash.digest('hex') };
}

describe('bounded memory', () => {
  it('zstd: 256 MiB streams through compress→decompress with RSS growth under 192 MiB, less than the data', async () => {
    const { growth, same } = await roundTrip('zstd', 256 * MiB);
    expect(same).toBe(true);
    // Garbage the GC has not freed yet counts too: ~60 MiB on Node 20, up to ~140 MiB on Node 24.
    expect(growth).toBeLessThan(192 * MiB);
  });

  it('gzip: 64 MiB with RSS growth under 64 MiB', async () => {
    const { growth, same } = await roundTrip('gzip', 64 * MiB, 1);
    expect(same).toBe(true);
    expect(growth).toBeLessThan(64 * MiB);
  });

  it('xz: 48 MiB at level 1 with RSS growth under 160 MiB', async () => {
    const { growth, same } = await roundTrip('xz', 48 * MiB, 1);
    expect(same).toBe(true);
    expect(growth).toBeLessThan(160 * MiB);
  });
});
