import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMPRESSION_LEVELS,
  compress,
  decompress,
  SUPPORTED_COMPRESSION_METHODS,
  type SupportedCompressionMethod,
} from '../../src/compression/index.js';
import { isNixcacheError, type NixcacheError } from '../../src/errors.js';
import { chunked, collectBytes, sameBytes, sampleBytes } from './helpers.js';

const METHODS = SUPPORTED_COMPRESSION_METHODS;
const COMPRESSED = METHODS.filter((m) => m !== 'none');

/** Random bytes that are sometimes compressible (a slice of sample text) and sometimes not. */
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }),
  fc.tuple(fc.nat({ max: 65536 }), fc.nat()).map(([n, seed]) => sampleBytes(n, seed)),
);
const cuts = fc.array(fc.nat({ max: 70000 }), { maxLength: 6 });

async function expectCode(it: AsyncIterable<Uint8Array>, code: string, method: string): Promise<void> {
  try {
    await collectBytes(it);
  } catch (e) {
    expect(isNixcacheError(e), String(e)).toBe(true);
    expect((e as NixcacheError).code).toBe(code);
    expect((e as Error).message).toContain(method);
    return;
  }
  expect.unreachable(`${method}: expected a ${code} error`);
}

describe('compress/decompress round trips', () => {
  for (const method of METHODS) {
    it(`${method}: decompress(compress(x)) = x for random bytes, levels and chunkings`, async () => {
      const range = COMPRESSION_LEVELS[method as SupportedCompressionMethod];
      await fc.assert(
        fc.asyncProperty(
          payload,
          cuts,
          cuts,
          fc.option(fc.integer({ min: range.min, max: range.max }), { nil: undefined }),
          async (data, inCuts, outCuts, level) => {
            const packed = await collectBytes(compress(method, chunked(data, inCuts), { level }));
            const unpacked = await collectBytes(decompress(method, chunked(packed, outCuts)));
            expect(sameBytes(unpacked, data)).toBe(true);
          },
        ),
        { numRuns: method === 'bzip2' ? 12 : 25 },
      );
    });
  }

  it('round-trips the empty input (and a source of empty chunks) for every method', async () => {
    for (const method of METHODS) {
      const packed = await collectBytes(compress(method, [new Uint8Array(0), new Uint8Array(0)]));
      if (method !== 'none') expect(packed.length, method).toBeGreaterThan(0);
      expect((await collectBytes(decompress(method, packed))).length, method).toBe(0);
    }
  });

  it('round-trips a multi-megabyte input given in many small chunks', async () => {
    const data = sampleBytes(3 << 20, 42);
    const pieces = chunked(
      data,
      Array.from({ length: 300 }, (_, i) => i * 10_007),
    );
    for (const method of METHODS) {
      if (method === 'bzip2') continue; // its pure-JS encoder is slow; CLI tests cover multi-block bzip2
      const level = method === 'br' ? 5 : undefined;
      const packed = await collectBytes(compress(method, pieces, { level }));
      expect(
        sameBytes(await collectBytes(decompress(method, chunked(packed, [1, 2, 3, 1000]))), data),
        method,
      ).toBe(true);
    }
  });

  it('accepts web ReadableStreams and single buffers', async () => {
    const data = sampleBytes(10_000);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(data.subarray(0, 5000));
        c.enqueue(data.subarray(5000));
        c.close();
      },
    });
    const packed = await collectBytes(compress('zstd', stream));
    expect(sameBytes(await collectBytes(decompress('zstd', packed)), data)).toBe(true);
  });
});

describe('bad input fails with COMPRESSION naming the method', () => {
  const data = sampleBytes(300_000, 3);
  const packedBy = new Map<string, Uint8Array>();
  async function packed(method: string): Promise<Uint8Array> {
    let p = packedBy.get(method);
    if (!p) {
      p = await collectBytes(compress(method, data, { level: method === 'bzip2' ? 1 : undefined }));
      packedBy.set(method, p);
    }
    return p;
  }

  for (const method of COMPRESSED) {
    it(`${method}: every truncation fails`, async () => {
      const p = await packed(method);
      const points = new Set([
        0,
        1,
        2,
        5,
        10,
        p.length >> 1,
        p.length - 12,
        p.length - 4,
        p.length - 2,
        p.length - 1,
      ]);
      for (const n of points) await expectCode(decompress(method, p.subarray(0, n)), 'COMPRESSION', method);
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: p.length - 1 }), async (n) => {
          await expectCode(
            decompress(method, [p.subarray(0, n >> 1), p.subarray(n >> 1, n)]),
            'COMPRESSION',
            method,
          );
        }),
        { numRuns: 15 },
      );
    });

    it(`${method}: garbage and corrupted bytes fail (or, where the format has no checksum, never hang)`, async () => {
      await expectCode(
        decompress(method, new TextEncoder().encode('this is not compressed at all')),
        'COMPRESSION',
        method,
      );
      await expectCode(decompress(method, new Uint8Array(0)), 'COMPRESSION', method);
      const p = await packed(method);
      const bad = Uint8Array.from(p);
      bad[bad.length >> 1]! ^= 0x5a;
      if (method === 'br') {
        // brotli has no checksum: a flipped bit may decode to other bytes, but must end either way.
        const out = await collectBytes(decompress(method, bad)).catch((e: unknown) => {
          expect(isNixcacheError(e, 'COMPRESSION')).toBe(true);
          return undefined;
        });
        if (out) expect(sameBytes(out, data)).toBe(false);
      } else {
        await expectCode(decompress(method, bad), 'COMPRESSION', method);
      }
    });
  }

  it('passes errors of the source through unchanged', async () => {
    const boom = new Error('network went away');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield sampleBytes(1000);
      throw boom;
    }
    for (const method of METHODS) {
      await expect(collectBytes(compress(method, failing())), method).rejects.toBe(boom);
    }
    const p = await packed('xz');
    async function* failingPacked(): AsyncGenerator<Uint8Array> {
      yield p.subarray(0, 1000);
      throw boom;
    }
    await expect(collectBytes(decompress('xz', failingPacked()))).rejects.toBe(boom);
  });

  it('stops with ABORTED when the signal fires, and ends the source', async () => {
    for (const method of METHODS) {
      const controller = new AbortController();
      let finished = false;
      async function* endless(): AsyncGenerator<Uint8Array> {
        try {
          for (let i = 0; ; i++) {
            if (i === 20) controller.abort();
            yield sampleBytes(4096, i);
          }
        } finally {
          finished = true;
        }
      }
      const level = method === 'bzip2' ? 1 : method === 'br' ? 1 : undefined;
      await expectCode(compress(method, endless(), { level, signal: controller.signal }), 'ABORTED', method);
      expect(finished, method).toBe(true);
    }
    const aborted = AbortSignal.abort();
    await expectCode(decompress('gzip', new Uint8Array(10), { signal: aborted }), 'ABORTED', 'gzip');
  });

  it('a consumer that stops early ends the source', async () => {
    let finished = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; i < 1000; i++) yield sampleBytes(65536, i);
      } finally {
        finished = true;
      }
    }
    for await (const _ of compress('gzip', source(), { level: 1 })) break;
    expect(finished).toBe(true);
  });
});
