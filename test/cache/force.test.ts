/**
 * `push --force` and `copy --force` re-publish what the cache has (issue 10 item 11): the
 * signatures another key added stay when the NAR is the same (same fingerprint), and go when the
 * content changed (they are about other content).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyPaths, pushPaths } from '../../src/cache/index.js';
import { formatPublicKey, formatSecretKey, generateSecretKey, verifyNarInfo } from '../../src/index.js';
import { openStore } from '../../src/store/index.js';
import { addPlainPath, runCli } from '../cli/helpers.js';
import { signLists } from '../helpers/sign.js';
import { readNarInfoFile } from './helpers.js';

let work: string;
let storeDir: string;
let plain: string;
let fresh = 0;
const mine = generateSecretKey('mine-1');
const theirs = generateSecretKey('theirs-1');
const ring = [formatPublicKey(mine.publicKey), formatPublicKey(theirs.publicKey)];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-force-'));
  storeDir = join(work, 'store');
  await mkdir(storeDir);
  plain = await addPlainPath(storeDir, 9, 'forced', { 'bin/tool': '#!/bin/sh\necho v1\n' });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A cache holding `plain` signed by mine, then by theirs (added with addSignatures). */
async function doublySigned() {
  const dir = join(work, `cache-${fresh++}`);
  const store = await openStore(`file://${dir}`);
  expect((await pushPaths(store, [plain], { storeDir, secretKeys: [mine] })).failed).toEqual([]);
  expect((await signLists(store, [plain], [theirs])).signed).toEqual([plain]);
  return { dir, store };
}

const signers = async (dir: string) =>
  verifyNarInfo(await readNarInfoFile(dir, plain), ring).signedBy.toSorted();

describe('push --force', () => {
  it('keeps the signatures of another key for the same NAR', async () => {
    const { dir, store } = await doublySigned();
    const result = await pushPaths(store, [plain], { storeDir, secretKeys: [mine], force: true });
    expect(result.pushed).toEqual([plain]);
    expect(await signers(dir)).toEqual(['mine-1', 'theirs-1']);
    expect((await readNarInfoFile(dir, plain)).sigs).toHaveLength(2);
  });

  it('drops them when the content changed', async () => {
    const { dir, store } = await doublySigned();
    const changedDir = join(work, `changed-${fresh++}`);
    await mkdir(changedDir);
    await addPlainPath(changedDir, 9, 'forced', { 'bin/tool': '#!/bin/sh\necho v2\n' });
    const before = await readNarInfoFile(dir, plain);
    const result = await pushPaths(store, [plain], { storeDir: changedDir, secretKeys: [mine], force: true });
    expect(result.pushed).toEqual([plain]);
    const after = await readNarInfoFile(dir, plain);
    expect(after.narHash).not.toEqual(before.narHash);
    expect(after.sigs).toHaveLength(1);
    expect(await signers(dir)).toEqual(['mine-1']);
  });

  it('through the CLI', async () => {
    const { dir } = await doublySigned();
    const keyFile = join(work, `mine-${fresh++}.secret`);
    await writeFile(keyFile, formatSecretKey(mine), { mode: 0o600 });
    const r = await runCli([
      'push',
      '--to',
      `file://${dir}`,
      '--store-dir',
      storeDir,
      '--secret-key-file',
      keyFile,
      '--force',
      plain,
    ]);
    expect(r.code).toBe(0);
    expect(await signers(dir)).toEqual(['mine-1', 'theirs-1']);
  });
});

describe('copy --force', () => {
  it('keeps the target signatures for the same NAR', async () => {
    const { store: from } = await doublySigned();
    const targetDir = join(work, `target-${fresh++}`);
    const to = await openStore(`file://${targetDir}`);
    const other = generateSecretKey('target-only-1');
    expect((await copyPaths(from, to, [plain], { trustedKeys: ring })).failed).toEqual([]);
    expect((await signLists(to, [plain], [other])).signed).toEqual([plain]);
    const again = await copyPaths(from, to, [plain], { trustedKeys: ring, force: true });
    expect(again.pushed).toEqual([plain]);
    const info = await readNarInfoFile(targetDir, plain);
    expect(verifyNarInfo(info, [...ring, formatPublicKey(other.publicKey)]).signedBy.toSorted()).toEqual([
      'mine-1',
      'target-only-1',
      'theirs-1',
    ]);
  });
});
