/**
 * The cache operations' trust and consistency rules seen from the `nixcache` command line: exit
 * codes, JSON and what is left in the caches (issue 10 items 1, 7, 10, 11).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/helpers.js';
import { parseVerifyJson } from '../helpers/verify.js';
import { hashPartOf, makeSourceStore, pushUnsigned, type SourceStore, swapNar } from './helpers.js';

let work: string;
let source: SourceStore;
let keyFile: string;
let publicKey: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cache-cli-'));
  source = await makeSourceStore(join(work, 'store'));
  keyFile = join(work, 'target.secret');
  const gen = await runCli(['key', 'generate', '--name', 'target-1', '--out', keyFile]);
  expect(gen.code).toBe(0);
  publicKey = gen.stdout.trim();
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('tampered content-addressed paths', () => {
  it.each([
    ['fixed:r:sha256', 'data'],
    ['text', 'note'],
  ] as const)(
    'a swapped NAR under a %s claim is refused by copy -k and untrusted by narinfo verify and verify --no-contents',
    async (_, which) => {
      const path = source[which];
      const dir = join(work, `source-${which}`);
      const url = await pushUnsigned(source, dir, [path]);
      await swapNar(dir, path, 'forged contents\n');
      const narinfo = join(dir, `${hashPartOf(path)}.narinfo`);

      const verifyFile = await runCli(['narinfo', 'verify', '-k', publicKey, narinfo]);
      expect(verifyFile.code).toBe(1);
      expect(verifyFile.stdout).toMatch(/untrusted/);
      const quick = await runCli([
        'verify',
        '--store',
        url,
        '-k',
        publicKey,
        '--no-contents',
        '--json',
        path,
      ]);
      expect(quick.code).toBe(1);
      expect(parseVerifyJson(quick.stdout).reports[0].status).not.toBe('ok');

      const targetDir = join(work, `target-${which}`);
      const copy = await runCli([
        'copy',
        '--from',
        url,
        '--to',
        `file://${targetDir}`,
        '-k',
        publicKey,
        '--secret-key-file',
        keyFile,
        '--json',
        path,
      ]);
      expect(copy.code).toBe(1);
      const out = JSON.parse(copy.stdout);
      expect(out.copied).toEqual([]);
      expect(out.failed).toEqual([{ path, code: 'INTEGRITY', message: expect.stringMatching(/CA/) }]);
      expect(existsSync(join(targetDir, `${hashPartOf(path)}.narinfo`))).toBe(false);
    },
  );
});
