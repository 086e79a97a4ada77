/**
 * `init` run again (issue 10 item 11): it merges into the existing nix-cache-info, keeping the
 * settings and lines it was not asked to change, and refuses a cache for another store directory.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCache } from '../../src/cache/index.js';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../cli/helpers.js';

let work: string;
let fresh = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-init-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const cacheInfoOf = (dir: string) => readFile(join(dir, 'nix-cache-info'), 'utf8');

describe('init run again', () => {
  it('keeps the settings it was not asked to change', async () => {
    const dir = join(work, `init-${fresh++}`);
    const store = await openStore(`file://${dir}`);
    await initCache(store, { priority: 40, wantMassQuery: true });
    expect(await initCache(store)).toEqual({ storeDir: '/nix/store', wantMassQuery: true, priority: 40 });
    expect(await cacheInfoOf(dir)).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
    await initCache(store, { priority: 30 });
    expect(await cacheInfoOf(dir)).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');
    await initCache(store, { wantMassQuery: false });
    expect(await cacheInfoOf(dir)).toBe('StoreDir: /nix/store\nWantMassQuery: 0\nPriority: 30\n');
  });

  it('keeps lines it does not know and refuses another store directory', async () => {
    const dir = join(work, `init-${fresh++}`);
    await mkdir(dir);
    await writeFile(
      join(dir, 'nix-cache-info'),
      'StoreDir: /nix/store\nPriority: 50\nX-Mirror-Of: https://cache.nixos.org\n',
    );
    await initCache(await openStore(`file://${dir}`), { wantMassQuery: true });
    expect(await cacheInfoOf(dir)).toBe(
      'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 50\nX-Mirror-Of: https://cache.nixos.org\n',
    );
    const refused = initCache(await openStore(`file://${dir}?store=/gnu/store`));
    await expect(refused).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
      message: expect.stringMatching(/\/gnu\/store/),
    });
    expect(await cacheInfoOf(dir)).toMatch(/^StoreDir: \/nix\/store\n/);
  });

  it('through the CLI: init --priority 40 --want-mass-query, then init alone', async () => {
    const dir = join(work, `init-${fresh++}`);
    const url = `file://${dir}`;
    expect((await runCli(['init', '--store', url, '--priority', '40', '--want-mass-query'])).code).toBe(0);
    const again = await runCli(['init', '--store', url, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).cacheInfo).toEqual({
      storeDir: '/nix/store',
      wantMassQuery: true,
      priority: 40,
    });
    expect(await cacheInfoOf(dir)).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
  });
});
