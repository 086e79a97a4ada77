/**
 * nix-cache-info on copy and push (issue 10 item 10): copy into a fresh cache writes it as push
 * does (Nix refuses a cache without it); an existing one is kept; a cache for another store
 * directory is refused before anything is written.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyPaths, pushPaths } from '../../src/cache/index.js';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../cli/helpers.js';
import { makeSourceStore, pushUnsigned, type SourceStore } from './helpers.js';

let work: string;
let source: SourceStore;
let sourceUrl: string;
let fresh = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cache-info-'));
  source = await makeSourceStore(join(work, 'store'));
  sourceUrl = await pushUnsigned(source, join(work, 'source'), [source.lib]);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const cacheInfoOf = (dir: string) => readFile(join(dir, 'nix-cache-info'), 'utf8');

describe('copy into a fresh cache', () => {
  it('writes nix-cache-info, as push does', async () => {
    const dir = join(work, `copy-${fresh++}`);
    const result = await copyPaths(await openStore(sourceUrl), await openStore(`file://${dir}`), [
      source.lib,
    ]);
    expect(result.failed).toEqual([]);
    expect(await cacheInfoOf(dir)).toBe('StoreDir: /nix/store\n');
  });

  it('keeps an existing nix-cache-info, and refuses a cache for another store directory', async () => {
    const dir = join(work, `copy-${fresh++}`);
    await mkdir(dir);
    await writeFile(join(dir, 'nix-cache-info'), 'StoreDir: /nix/store\nPriority: 30\n');
    const to = await openStore(`file://${dir}`);
    expect((await copyPaths(await openStore(sourceUrl), to, [source.data])).failed).toEqual([]);
    expect(await cacheInfoOf(dir)).toBe('StoreDir: /nix/store\nPriority: 30\n');

    const other = join(work, `copy-${fresh++}`);
    await mkdir(other);
    await writeFile(join(other, 'nix-cache-info'), 'StoreDir: /gnu/store\n');
    const refused = copyPaths(await openStore(sourceUrl), await openStore(`file://${other}`), [source.lib]);
    await expect(refused).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
      message: expect.stringMatching(/\/gnu\/store/),
    });
    const push = pushPaths(await openStore(`file://${other}`), [source.lib], { storeDir: source.dir });
    await expect(push).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(await cacheInfoOf(other)).toBe('StoreDir: /gnu/store\n');
  });

  it('the CLI copy writes it too', async () => {
    const dir = join(work, `copy-${fresh++}`);
    const r = await runCli(['copy', '--from', sourceUrl, '--to', `file://${dir}`, source.data]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await cacheInfoOf(dir)).toBe('StoreDir: /nix/store\n');
  });
});
