/**
 * The built executable (dist/cli/main.js, package.json `bin`), as `npm test` builds it before the
 * tests: it starts with a shebang, is executable, and runs a real workflow. Skipped with a
 * message when dist/ is missing outside CI (`npx vitest` without a build); a failure under CI.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeSampleStore } from '../../fixtures/sample-store.js';
import { inCI, repoRoot } from '../helpers/env.js';
import { parseVerifyJson } from '../helpers/verify.js';
import { distEntry, runCli } from './helpers.js';

const built = existsSync(distEntry);
if (!built && inCI) throw new Error(`${distEntry} is missing under CI=true (npm test builds it)`);
if (!built) console.warn('[nixcache tests] skipping the dist CLI test: run `npm run build` first');

describe.skipIf(!built)('the built CLI (dist/cli/main.js)', () => {
  it('is the package bin, starts with a shebang and is executable', async () => {
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin).toEqual({ nixcache: './dist/cli/main.js' });
    expect((await readFile(distEntry, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect((await stat(distEntry)).mode & 0o111).not.toBe(0);
  });

  it('runs help, version and a push/verify round trip', async () => {
    const help = await runCli(['--help'], { dist: true });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: nixcache <command>');
    expect((await runCli(['--version'], { dist: true })).stdout).toMatch(/^nixcache \d+\.\d+\.\d+/);
    const work = await mkdtemp(join(tmpdir(), 'nixcache-dist-cli-'));
    try {
      await mkdir(join(work, 'store'));
      const sample = await makeSampleStore(join(work, 'store'));
      const key = join(work, 'k.secret');
      const pub = (
        await runCli(['key', 'generate', '--name', 'dist-1', '--out', key], { dist: true })
      ).stdout.trim();
      const url = `file://${join(work, 'cache')}`;
      const push = await runCli(
        ['push', '--to', url, '--secret-key-file', key, '--store-dir', join(work, 'store'), sample.hello],
        {
          dist: true,
        },
      );
      expect(push.code, push.stderr).toBe(0);
      const verify = await runCli(['verify', '--store', url, '-k', pub, '--all', '--json'], { dist: true });
      expect(verify.code, verify.stderr).toBe(0);
      expect(parseVerifyJson(verify.stdout).summary.ok).toBe(3);
      // The worker threads start from dist/cache/verify-worker.js.
      const onWorkers = await runCli(
        ['verify', '--store', url, '-k', pub, '--all', '--json', '--workers', '2'],
        {
          dist: true,
        },
      );
      expect(onWorkers.code, onWorkers.stderr).toBe(0);
      expect(parseVerifyJson(onWorkers.stdout).summary).toMatchObject({ total: 3, ok: 3 });
      expect(
        (await runCli(['verify', '--store', 'gopher://x', '-k', pub, '--all'], { dist: true })).code,
      ).toBe(2);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
