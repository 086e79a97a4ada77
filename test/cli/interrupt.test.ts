/**
 * Ctrl-C during `nixcache push`: the operation is aborted through its AbortSignal, the process
 * exits promptly with 130 and says so in one line, and the cache holds no narinfo for anything
 * that was not completely uploaded (narinfos are written last). A rerun then completes.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { encodeNix32 } from '../../src/nix32.js';
import { inCI } from '../helpers/env.js';
import { addPlainPath, distEntry, runCli, spawnCli } from './helpers.js';

// The last test runs the built CLI: under tsx, a dynamic import waits on the loader's thread
// and so gives the event loop a turn that the shipped bundle never got.
const built = existsSync(distEntry);
if (!built && inCI) throw new Error(`${distEntry} is missing under CI=true (npm test builds it)`);
if (!built)
  console.warn('[nixcache tests] skipping the many-small-paths Ctrl-C test: run `npm run build` first');

let work: string;
let big: string;
let top: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cli-sigint-'));
  const store = join(work, 'store');
  await mkdir(store);
  // Incompressible data: xz takes seconds on it, long enough to interrupt.
  big = await addPlainPath(store, 11, 'big-blob', { blob: randomBytes(16 * 1024 * 1024) });
  top = await addPlainPath(store, 12, 'uses-big', { 'ref.txt': `${big}\n` });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('Ctrl-C', () => {
  it('aborts a push with exit code 130 and leaves no narinfo without its NAR', async () => {
    const cache = join(work, 'cache');
    const args = ['push', '--to', `file://${cache}`, '--store-dir', join(work, 'store'), '-v', top];
    const child = spawnCli(args);
    child.stdin.end();
    let stderr = '';
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    const started = new Promise<void>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (stderr.includes(`pushing ${big}`)) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await started;
    await new Promise((r) => setTimeout(r, 400));
    const sent = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    expect(Date.now() - sent).toBeLessThan(5000);
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/nixcache: interrupted\n$/);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).toBe('');

    const names = await readdir(cache).catch(() => [] as string[]);
    const narinfos = names.filter((n) => n.endsWith('.narinfo'));
    expect(narinfos).not.toContain(`${big.slice(11, 43)}.narinfo`);
    expect(narinfos).not.toContain(`${top.slice(11, 43)}.narinfo`);
    for (const n of narinfos) {
      const info = parseNarInfo(await readFile(join(cache, n), 'utf8'));
      expect((await stat(join(cache, info.url))).size).toBe(info.fileSize);
    }

    // The interrupted push resumes: a rerun (uncompressed, to be quick) publishes both.
    const rerun = await runCli([
      'push',
      '--to',
      `file://${cache}?compression=none`,
      '--store-dir',
      join(work, 'store'),
      top,
    ]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/^pushed 2 paths/);
  });

  it.skipIf(!built)(
    'stops a push of many small paths to an uncompressed file:// cache, not after the last one',
    async () => {
      // Nothing in such a push waits for I/O (synchronous reads and writes, no compression): the
      // event loop, which delivers the signal, must still get its turns while it runs.
      const store = join(work, 'small-store');
      await mkdir(store);
      const paths: string[] = [];
      for (let i = 0; i < 2000; i++) {
        const hash = new Uint8Array(20);
        hash[0] = i & 0xff;
        hash[1] = i >> 8;
        hash[2] = 0x5a;
        const base = `${encodeNix32(hash)}-small-${i}`;
        await mkdir(join(store, base));
        await writeFile(join(store, base, 'f.txt'), `small path ${i}\n`);
        paths.push(`/nix/store/${base}`);
      }
      const cache = join(work, 'small-cache');
      const child = spawnCli(
        ['push', '--to', `file://${cache}?compression=none`, '--store-dir', store, '-v', '--stdin'],
        { dist: true },
      );
      child.stdin.end(paths.join('\n'));
      let stderr = '';
      // Interrupted once 20 paths are done: well into the run, whatever was loaded on the way.
      const started = new Promise<void>((resolve) => {
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
          if ((stderr.match(/^pushed \/nix\/store\//gm) ?? []).length >= 20) resolve();
        });
      });
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      await started;
      child.kill('SIGINT');
      expect(await exited, stderr).toBe(130);
      const narinfos = (await readdir(cache).catch(() => [] as string[])).filter((n) =>
        n.endsWith('.narinfo'),
      );
      // Before, the signal was seen only once all 2,000 were pushed.
      expect(narinfos.length).toBeLessThan(paths.length);
      for (const n of narinfos) {
        const info = parseNarInfo(await readFile(join(cache, n), 'utf8'));
        expect((await stat(join(cache, info.url))).size).toBe(info.fileSize);
      }
    },
  );
});
