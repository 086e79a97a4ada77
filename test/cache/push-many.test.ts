/**
 * A push of many small paths (issue 11 item 6): from `LIST_FROM` paths on, what the cache
 * already has is found in one listing instead of a HEAD per path; paths already there are
 * skipped, the rest pushed with their narinfos last, and a cache that cannot be listed falls
 * back to asking for each path.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIST_FROM } from '../../src/cache/graph.js';
import { pushPaths } from '../../src/cache/index.js';
import { openStore } from '../../src/store/index.js';
import { makeTextPath } from '../../src/store-path/make.js';

let work: string;
let storeDir: string;
const paths: string[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-many-'));
  storeDir = join(work, 'store');
  await (await import('node:fs/promises')).mkdir(storeDir);
  for (let i = 0; i < LIST_FROM + 6; i++) {
    const contents = `small file ${i}\n`.repeat(1 + (i % 7));
    const p = makeTextPath(`small-${i}.txt`, new TextEncoder().encode(contents));
    await writeFile(join(storeDir, p.slice('/nix/store/'.length)), contents);
    paths.push(p);
  }
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('push of many paths', () => {
  for (const compression of ['xz', 'zstd'] as const) {
    it(`${compression}: skips what the cache has (found by listing) and pushes the rest`, async () => {
      const dir = join(work, `cache-${compression}`);
      const store = await openStore(`file://${dir}?compression=${compression}`);
      const first = await pushPaths(store, paths.slice(0, 10), { storeDir });
      expect(first.failed).toEqual([]);
      let heads = 0;
      const hasNarInfo = store.hasNarInfo.bind(store);
      store.hasNarInfo = (...args: Parameters<typeof hasNarInfo>) => {
        heads++;
        return hasNarInfo(...args);
      };
      const second = await pushPaths(store, paths, { storeDir });
      expect(second.failed).toEqual([]);
      expect(heads).toBe(0);
      expect([...second.skipped].sort()).toEqual(paths.slice(0, 10).sort());
      expect(second.pushed.length).toBe(paths.length - 10);
      for (const p of paths) {
        const info = await store.getNarInfo(p);
        expect(info?.compression).toBe(compression);
        expect(info?.ca).toMatch(/^text:sha256:/);
      }
      await store.close();
    });
  }

  it('stages the next NARs while the upload slots wait on the server', async () => {
    const store = await openStore(`file://${join(work, 'cache-slots')}?compression=xz`);
    let uploading = 0;
    let most = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const putFile = store.putFile.bind(store);
    store.putFile = async (...args: Parameters<typeof putFile>) => {
      if (!args[0].startsWith('nar/')) return putFile(...args);
      uploading++;
      most = Math.max(most, uploading);
      try {
        await gate;
        return await putFile(...args);
      } finally {
        uploading--;
      }
    };
    let staged = 0;
    const run = pushPaths(store, paths.slice(0, 12), {
      storeDir,
      parallelism: 2,
      onProgress: (e) => {
        if (e.type === 'staged') staged++;
      },
    });
    const deadline = Date.now() + 10_000;
    while ((staged < 8 || uploading < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    // Two uploads hold their slots; meanwhile two more paths were staged for the staging slots and
    // four ahead (STAGED_AHEAD), and they wait for one; no more are staged while nothing uploads.
    expect({ staged, uploading }).toEqual({ staged: 8, uploading: 2 });
    release();
    const r = await run;
    expect(r.failed).toEqual([]);
    expect(r.pushed.length).toBe(12);
    expect(most).toBe(2);
    await store.close();
  });

  it('asks for each path when the cache cannot be listed', async () => {
    const dir = join(work, 'cache-unlistable');
    const store = await openStore(`file://${dir}?compression=none`);
    await pushPaths(store, paths.slice(0, 3), { storeDir });
    store.listNarInfos = () => {
      throw new Error('no listing here');
    };
    const r = await pushPaths(store, paths, { storeDir });
    expect(r.failed).toEqual([]);
    expect(r.skipped.length).toBe(3);
    expect(r.pushed.length).toBe(paths.length - 3);
    await store.close();
  });
});
