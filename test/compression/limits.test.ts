/**
 * Issue 10 item 4: decompression is bounded by a declared output size. Every codec stops with a
 * typed `TOO_LARGE` error once it has produced more than `maxOutputBytes`, never hands out more
 * than that, and a small bomb (kilobytes expanding to gigabytes of zeros) costs a few MiB of memory
 * instead of gigabytes. The memory checks run in a child process so that the peak resident set is
 * that of one decompression alone.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compress, decompress, SUPPORTED_COMPRESSION_METHODS } from '../../src/compression/index.js';
import { decompressZstdJs } from '../../src/compression/zstd.js';
import { isNixcacheError } from '../../src/errors.js';
import { MiB, zstdZeros } from './bombs.js';
import { chunked, collectBytes, sameBytes, sampleBytes } from './helpers.js';

const run = promisify(execFile);
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const child = fileURLToPath(new URL('./bomb-child.ts', import.meta.url));

interface ChildResult {
  input: number;
  expands: number;
  output: number;
  growth: number;
  error?: { code: string; message: string };
}

async function inChild(method: string, limit: number | 'none'): Promise<ChildResult> {
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', '--import', tsx, child, method, String(limit)],
    {
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
}

/** Decompresses with a limit; returns what came out before the stream ended or failed. */
async function drain(it: AsyncIterable<Uint8Array>): Promise<{ out: Uint8Array; code?: string }> {
  const parts: Uint8Array[] = [];
  try {
    for await (const chunk of it) parts.push(chunk);
  } catch (e) {
    if (!isNixcacheError(e)) throw e;
    return { out: await collectBytes(parts), code: e.code };
  }
  return { out: await collectBytes(parts) };
}

describe('decompression limits', () => {
  for (const method of SUPPORTED_COMPRESSION_METHODS) {
    it(`${method}: never produces more than maxOutputBytes, and is exact up to it`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.tuple(fc.nat({ max: 40000 }), fc.nat()).map(([n, seed]) => sampleBytes(n, seed)),
          fc.nat({ max: 45000 }),
          fc.array(fc.nat({ max: 45000 }), { maxLength: 4 }),
          async (data, limit, cuts) => {
            const packed = await collectBytes(
              compress(method, data, { level: method === 'br' ? 4 : undefined }),
            );
            const { out, code } = await drain(
              decompress(method, chunked(packed, cuts), { maxOutputBytes: limit }),
            );
            expect(out.length).toBeLessThanOrEqual(limit);
            if (data.length <= limit) {
              expect(code).toBeUndefined();
              expect(sameBytes(out, data)).toBe(true);
            } else {
              expect(code).toBe('TOO_LARGE');
            }
          },
        ),
        { numRuns: method === 'bzip2' ? 10 : 30 },
      );
    });
  }

  it('the fzstd fallback stops at the limit too', async () => {
    const parts: Uint8Array[] = [];
    await expect(
      (async () => {
        for await (const c of decompressZstdJs([zstdZeros(256 * MiB)][Symbol.iterator]() as never, {
          maxOutputBytes: 1000,
        }))
          parts.push(c);
      })(),
    ).rejects.toThrow(/exceeds 1000 bytes/);
    expect(parts.length).toBe(0);
  });

  it('names the method and the limit in a TOO_LARGE error', async () => {
    const err = await collectBytes(decompress('zstd', zstdZeros(1 * MiB), { maxOutputBytes: 10 })).catch(
      (e) => e,
    );
    expect(err.code).toBe('TOO_LARGE');
    expect(err.message).toMatch(/zstd decompress.*limit of 10 bytes/);
    expect(err.data).toMatchObject({ method: 'zstd', limit: 10 });
  });
});

describe('decompression bombs (child process, peak RSS)', () => {
  for (const method of ['zstd', 'bzip2', 'xz', 'gzip', 'br']) {
    it(`${method}: a bomb stops at a 1000-byte limit with TOO_LARGE, RSS growth under 48 MiB`, async () => {
      const r = await inChild(method, 1000);
      expect(r.error?.code, JSON.stringify(r)).toBe('TOO_LARGE');
      expect(r.output).toBe(0);
      expect(r.expands).toBeGreaterThan(500 * r.input);
      expect(r.growth, JSON.stringify(r)).toBeLessThan(48 * MiB);
    }, 60_000);
  }

  it('zstd: 2 GiB of zeros from a 64 KiB file stream through with RSS growth under 160 MiB', async () => {
    // Before: zstd-napi's stream decoded the whole 64 KiB input at once (4.4 GB resident).
    const r = await inChild('zstd', 'none');
    expect(r.error, JSON.stringify(r)).toBeUndefined();
    expect(r.output).toBe(2 * 1024 * MiB);
    expect(r.growth, JSON.stringify(r)).toBeLessThan(160 * MiB);
  }, 60_000);

  it('bzip2: decoding holds one block at a time (200 MB out of 2 GiB: RSS growth under 256 MiB)', async () => {
    // Before: every buffered block was decoded per write, as a JS array of numbers (2.5-4 GB).
    const r = await inChild('bzip2', 200_000_000);
    expect(r.error?.code, JSON.stringify(r)).toBe('TOO_LARGE');
    expect(r.output).toBeGreaterThan(100_000_000);
    expect(r.growth, JSON.stringify(r)).toBeLessThan(256 * MiB);
  }, 60_000);
});
