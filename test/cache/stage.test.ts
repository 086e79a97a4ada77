/**
 * Staging a NAR (issue 11 item 6): small NARs are compressed in one call and kept in memory,
 * larger ones stream into a spill file in the caller's shared directory; both give the same
 * hashes and sizes as a plain streamed compression, and nothing is left behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageNar } from '../../src/cache/stage.js';
import { compressBytes, decompress } from '../../src/compression/compress.js';
import { formatHash } from '../../src/hash/hash.js';
import { hashBytes } from '../../src/hash/hasher.js';
import { collectBytes } from '../../src/internal/iter.js';
import { dirNar, entryTokens, fileTokens } from '../nar/helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nixcache-stage-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sampleNar(size: number): Uint8Array {
  let text = '';
  for (let i = 0; text.length < size; i++) text += `line ${i} of a sample file ${(i * 7919) % 1000}\n`;
  return dirNar(entryTokens('a.txt', fileTokens(text)), entryTokens('b.txt', fileTokens('b\n')));
}

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.slice(at, at + size);
}

describe('stageNar', () => {
  for (const method of ['xz', 'zstd', 'gzip', 'none'] as const) {
    it(`${method}: in memory below the limit, a spill file in tempDir above it, same NAR either way`, async () => {
      const nar = sampleNar(120_000);
      const spillDir = join(dir, `spill-${method}`);
      await rm(spillDir, { recursive: true, force: true });
      const { mkdir } = await import('node:fs/promises');
      await mkdir(spillDir);
      for (const memoryLimit of [1 << 20, 4096, 0]) {
        const staged = await stageNar(pieces(nar, 10_000), {
          compression: method,
          memoryLimit,
          tempDir: spillDir,
          listing: true,
        });
        try {
          expect(staged.narSize).toBe(nar.length);
          expect(formatHash(staged.narHash)).toBe(
            formatHash({ algorithm: 'sha256', digest: hashBytes('sha256', nar) }),
          );
          const body = await collectBytes(staged.body());
          expect(body.length).toBe(staged.fileSize);
          expect(formatHash(staged.fileHash)).toBe(
            formatHash({ algorithm: 'sha256', digest: hashBytes('sha256', body) }),
          );
          expect(await collectBytes(decompress(method, [body]))).toEqual(nar);
          const files = await readdir(spillDir);
          if (memoryLimit >= staged.fileSize) {
            expect(staged.bytes()).toBeDefined();
            expect(files).toEqual([]);
          } else {
            expect(staged.bytes()).toBeUndefined();
            expect(files.length).toBe(1);
          }
        } finally {
          await staged.dispose();
        }
        expect(await readdir(spillDir)).toEqual([]);
      }
    });
  }

  it('refuses an invalid NAR held in memory and leaves nothing behind', async () => {
    const nar = sampleNar(1000).slice(0, 500);
    await expect(stageNar(pieces(nar, 100), { compression: 'xz', tempDir: dir })).rejects.toMatchObject({
      code: 'BAD_NAR',
    });
  });
});

describe('compressBytes', () => {
  it('writes what decompress reads, for every method', async () => {
    const input = sampleNar(60_000);
    for (const method of ['xz', 'zstd', 'bzip2', 'br', 'gzip', 'none'] as const) {
      const out = await compressBytes(method, input);
      expect(await collectBytes(decompress(method, [out]))).toEqual(input);
    }
  });

  it('checks the level as compress does', async () => {
    await expect(compressBytes('xz', new Uint8Array(1), { level: 42 })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
  });
});

describe('xz of small inputs in the worker thread', () => {
  it('gives the bytes liblzma gives on the calling thread, for views into larger buffers, many at once', async () => {
    const { xzInWorker } = await import('../../src/compression/xz-worker.js');
    const lzma = await import('node-liblzma');
    const big = sampleNar(200_000);
    const views = Array.from({ length: 24 }, (_, i) => big.subarray(i * 97, i * 97 + 500 + i * 3000));
    const outs = await Promise.all(views.map((v) => xzInWorker(v, 4)));
    for (const [i, v] of views.entries()) {
      expect(Buffer.from(outs[i]!)).toEqual(
        lzma.xzSync(Buffer.from(v), { preset: 4, check: lzma.check.CRC64 }),
      );
      expect(await collectBytes(decompress('xz', [outs[i]!]))).toEqual(v);
    }
    // The caller's buffers are left alone (the worker gets copies).
    expect(big.byteLength).toBe(sampleNar(200_000).byteLength);
  });

  it('lets the process exit when it was started ahead of time and never used', async () => {
    const module = fileURLToPath(new URL('../../src/compression/xz-worker.ts', import.meta.url));
    const script = join(dir, 'warm-up.mts');
    await writeFile(script, `import { startXzWorker } from ${JSON.stringify(module)};\nstartXzWorker();\n`);
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { timeout: 20_000 });
    expect(child.error).toBeUndefined();
    expect(child.status).toBe(0);
  });

  it('reports a liblzma failure, and keeps working afterwards', async () => {
    const { xzInWorker } = await import('../../src/compression/xz-worker.js');
    await expect(xzInWorker(new Uint8Array(10), 42)).rejects.toThrow();
    const out = await xzInWorker(new TextEncoder().encode('still here'), 4);
    expect(new TextDecoder().decode(await collectBytes(decompress('xz', [out])))).toBe('still here');
  });
});
