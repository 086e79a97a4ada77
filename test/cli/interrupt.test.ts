/**
 * Ctrl-C during `nixcache push`: the operation is aborted through its AbortSignal, the process
 * exits promptly with 130 and says so in one line, and the cache holds no narinfo for anything
 * that was not completely uploaded (narinfos are written last). A rerun then completes.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { addPlainPath, runCli, spawnCli } from './helpers.js';

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
});
