/**
 * Interop with the reference command-line tools: what `xz`, `zstd`, `bzip2` and `gzip` write,
 * nixcache reads (including multi-stream and multi-threaded output), and what nixcache writes, they
 * read. Brotli has no CLI here; node:zlib's one-shot brotli is the reference.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compress, decompress } from '../../src/compression/index.js';
import { decompressXzNative, decompressXzWasm } from '../../src/compression/xz.js';
import { decompressZstdJs, decompressZstdNapi } from '../../src/compression/zstd.js';
import { inCI } from '../helpers/env.js';
import { chunked, collectBytes, sameBytes, sampleBytes } from './helpers.js';

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[], input: Uint8Array): Uint8Array {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 30 });
}

const TOOLS = {
  xz: { cmd: 'xz', extra: [['-T2', '-6'], ['-0'], ['-9e']] },
  zstd: { cmd: 'zstd', extra: [['-3'], ['-19'], ['--no-check', '-1']] },
  bzip2: { cmd: 'bzip2', extra: [['-9'], ['-1']] },
  gzip: { cmd: 'gzip', extra: [['-6'], ['-1']] },
} as const;

const data = sampleBytes(2_500_000, 11);

for (const [method, { cmd, extra }] of Object.entries(TOOLS)) {
  const present = has(cmd);
  if (!present && inCI) throw new Error(`${cmd} is required under CI=true`);
  describe.skipIf(!present)(`${method} against the ${cmd} CLI`, () => {
    it(`decodes what \`${cmd}\` writes, also concatenated streams`, async () => {
      for (const args of extra) {
        const packed = run(cmd, ['-c', ...args], data);
        const out = await collectBytes(decompress(method, chunked(packed, [7, 65536, 100_000])));
        expect(sameBytes(out, data), `${cmd} ${args.join(' ')}`).toBe(true);
      }
      const a = run(cmd, ['-c'], data.subarray(0, 1_000_000));
      const b = run(cmd, ['-c'], data.subarray(1_000_000));
      const both = new Uint8Array(a.length + b.length);
      both.set(a);
      both.set(b, a.length);
      expect(sameBytes(await collectBytes(decompress(method, both)), data)).toBe(true);
    });

    it(`writes what \`${cmd} -d\` reads`, async () => {
      const level = method === 'bzip2' ? 1 : undefined;
      const input = method === 'bzip2' ? data.subarray(0, 400_000) : data;
      const packed = await collectBytes(compress(method, chunked(input, [1, 50_000, 1_000_000]), { level }));
      expect(sameBytes(run(cmd, ['-dc'], packed), input)).toBe(true);
      const empty = await collectBytes(compress(method, new Uint8Array(0)));
      expect(run(cmd, ['-dc'], empty).length).toBe(0);
      if (method === 'xz') {
        const file = join(mkdtempSync(join(tmpdir(), 'nixcache-xz-')), 'a.xz');
        writeFileSync(file, packed);
        expect(execFileSync('xz', ['--robot', '--list', file]).toString()).toMatch(/CRC64/);
      }
    });
  });
}

describe.skipIf(!has('bzip2'))('bzip2 multi-stream output of the sliced encoder', () => {
  it('is read by `bzip2 -d` when the input spans several blocks', async () => {
    const input = sampleBytes(450_000, 5);
    const packed = await collectBytes(compress('bzip2', input, { level: 1 }));
    expect(sameBytes(run('bzip2', ['-dc'], packed), input)).toBe(true);
    expect(sameBytes(await collectBytes(decompress('bzip2', packed)), input)).toBe(true);
  });
});

describe('brotli against node:zlib as the reference', () => {
  it('decodes node:zlib brotli and writes what it decodes', async () => {
    for (const quality of [1, 5, 11]) {
      const ref = brotliCompressSync(data.subarray(0, 600_000), { params: { 1: quality } });
      expect(
        sameBytes(await collectBytes(decompress('br', chunked(ref, [3, 9000]))), data.subarray(0, 600_000)),
      ).toBe(true);
    }
    const ours = await collectBytes(compress('br', data, { level: 4 }));
    expect(sameBytes(brotliDecompressSync(ours), data)).toBe(true);
  });
});

describe('fallback decoders', () => {
  it('xz: the WebAssembly decoder reads xz output, multi-stream too, and detects truncation', async () => {
    const packed = run('xz', ['-c', '-T2'], data);
    const twice = new Uint8Array(packed.length * 2);
    twice.set(packed);
    twice.set(packed, packed.length);
    async function* source(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
      yield* chunked(bytes, [100, 40_000, 500_000]);
    }
    const out = await collectBytes(decompressXzWasm(source(twice)));
    expect(out.length).toBe(data.length * 2);
    expect(sameBytes(out.subarray(data.length), data)).toBe(true);
    await expect(
      collectBytes(decompressXzWasm(source(packed.subarray(0, packed.length - 1)))),
    ).rejects.toThrow();
    await expect(collectBytes(decompressXzNative(source(packed.subarray(0, 5000))))).rejects.toThrow(
      /truncated/,
    );
  });

  it('zstd: zstd-napi and the pure-JS fzstd read zstd output', async () => {
    const packed = run('zstd', ['-c', '-5'], data);
    async function* source(): AsyncGenerator<Uint8Array> {
      yield* chunked(packed, [10, 20_000, 300_000]);
    }
    expect(sameBytes(await collectBytes(decompressZstdJs(source())), data)).toBe(true);
    expect(sameBytes(await collectBytes(decompressZstdNapi(source())), data)).toBe(true);
    async function* cut(): AsyncGenerator<Uint8Array> {
      yield packed.subarray(0, packed.length - 10);
    }
    await expect(collectBytes(decompressZstdJs(cut()))).rejects.toThrow();
    await expect(collectBytes(decompressZstdNapi(cut()))).rejects.toThrow();
  });
});
