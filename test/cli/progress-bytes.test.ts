/**
 * Progress counts NAR bytes as they stream (issue 10 item 13): push reported only the compressed
 * upload bytes after each path was staged (a constant "180 B" through a 28 s push), and verify
 * reported nothing until a path was done ("0/0 paths | 0 B" through a 2 GiB NAR). The library
 * now reports NAR bytes chunk by chunk (push's `nar` events, verify's `onBytes`) and verify says
 * how many paths are known so far (`onQueued`); the CLI draws those.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { pushPaths } from '../../src/cache/push.js';
import { generateSecretKey, toPublicKey } from '../../src/signing/keys.js';
import { openStore } from '../../src/store/open.js';
import { verifyReports } from '../helpers/verify.js';
import { addPlainPath } from './helpers.js';
import { runInProcess } from './inprocess.js';

let work: string;
let sample: SampleStore;
let big: string;
const SIZE = 3 * 1024 * 1024;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-progress-bytes-'));
  await mkdir(join(work, 'store'));
  sample = await makeSampleStore(join(work, 'store'));
  const bytes = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) bytes[i] = (i * 7919) % 251;
  big = await addPlainPath(join(work, 'store'), 9, 'big', { 'share/blob': bytes });
  await writeFile(join(work, 'unused'), '');
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('byte progress', () => {
  it('push emits NAR bytes while each path streams, before the path is done', async () => {
    const store = await openStore(`file://${join(work, 'c1')}?compression=zstd`);
    const events: { type: string; path: string; bytes?: number }[] = [];
    await pushPaths(store, [big, sample.hello], {
      storeDir: join(work, 'store'),
      onProgress: (e) => events.push({ type: e.type, path: e.path, ...('bytes' in e && { bytes: e.bytes }) }),
    });
    const narEvents = events.filter((e) => e.type === 'nar' && e.path === big);
    expect(narEvents.length).toBeGreaterThan(2);
    const total = narEvents.reduce((n, e) => n + e.bytes!, 0);
    expect(total).toBeGreaterThan(SIZE);
    const firstNar = events.findIndex((e) => e.type === 'nar' && e.path === big);
    const done = events.findIndex((e) => e.type === 'done' && e.path === big);
    expect(firstNar).toBeLessThan(done);
    await store.close();
  });

  it('verify reports NAR bytes as they are checked and the paths known so far', async () => {
    const key = generateSecretKey('progress-1');
    const store = await openStore(`file://${join(work, 'c2')}?compression=zstd`);
    await pushPaths(store, [big], { storeDir: join(work, 'store'), secretKeys: [key] });
    let queued = 0;
    const chunks: number[] = [];
    let bytesAtReport = -1;
    const result = await verifyReports(store, {
      trustedKeys: [toPublicKey(key)],
      onQueued: () => queued++,
      onBytes: (n) => chunks.push(n),
      onReport: () => {
        bytesAtReport = chunks.reduce((a, b) => a + b, 0);
      },
    });
    expect(result.ok).toBe(true);
    expect(queued).toBe(1);
    expect(chunks.length).toBeGreaterThan(0);
    expect(bytesAtReport).toBe(result.reports[0]!.narSize);
    await store.close();
  });

  it('the CLI progress line of verify shows the bytes and the path count', async () => {
    const key = join(work, 'k.secret');
    const pub = (await runInProcess(['key', 'generate', '--name', 'p-1', '--out', key])).stdout.trim();
    const url = `file://${join(work, 'c3')}?compression=none`;
    const push = await runInProcess([
      'push',
      '--to',
      url,
      '--secret-key-file',
      key,
      '--store-dir',
      join(work, 'store'),
      big,
    ]);
    expect(push.code, push.stderr).toBe(0);
    // Slow the check down enough for the 100 ms redraw to catch it: many copies of the same path.
    const r = await runInProcess(['verify', '--store', url, '-k', pub, ...Array(40).fill(big)], {
      tty: true,
    });
    expect(r.code, r.stderr).toBe(0);
    const frames = r.stderr.split('\r\x1b[K').filter((f) => f.startsWith('verify '));
    if (frames.length > 0) {
      // Whatever frame was drawn, it knows the paths and has counted bytes once a path was checked.
      expect(frames.at(-1)).toMatch(/^verify \d+\/40 paths/);
      expect(frames.some((f) => !/\| 0 B \|/.test(f))).toBe(true);
    }
  }, 60_000);
});
