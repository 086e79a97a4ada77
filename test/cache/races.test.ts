/**
 * gc and pins under concurrency (issue 12): gc running while a push is paused between its NAR
 * and its narinfo (the fault proxy holds the narinfo PUT) keeps the push's NAR and closure, so the
 * narinfo is valid once written; two pushers pinning the same name at once both keep their
 * revision — a real race on file:// (link() / lock file + etag), and on s3rver, which ignores
 * If-Match/If-None-Match, the lost race is played by the proxy answering 412 after letting the
 * other pinner write first.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage, type GcResult } from '../../src/cache/gc.js';
import { addPinRevision, getPin } from '../../src/cache/pins.js';
import { pushPaths } from '../../src/cache/push.js';
import { generateSecretKey, type SecretKey } from '../../src/signing/keys.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { narInfoKey } from '../../src/store/layout.js';
import { parseStorePath } from '../../src/store-path/store-path.js';
import { faults, type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, startS3rver } from '../helpers/s3rver.js';
import { checkInvariant, fileStore, s3Store } from '../reliability/helpers.js';
import { addPath, ageFiles, DAY, push } from './gc-helpers.js';

const BUCKET = 'gc-races';
let tmp: string;
let storeDir: string;
let key: SecretKey;
let s3: S3rverHandle;
let proxy: LoopbackProxy;
const stores: BinaryCacheStore[] = [];
const track = <T extends BinaryCacheStore>(s: T): T => {
  stores.push(s);
  return s;
};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-gc-races-'));
  storeDir = join(tmp, 'store');
  mkdirSync(storeDir);
  key = generateSecretKey('gc-races-1');
  s3 = await startS3rver({ buckets: [BUCKET] });
  proxy = await startProxy({ target: s3.endpoint, maxRecordBytes: 4096 });
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await proxy?.close();
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('gc racing a push', () => {
  it('keeps the NAR of a push paused before its narinfo, and the narinfo is valid afterwards', async () => {
    const direct = track(s3Store(s3.endpoint, BUCKET, 'race-push'));
    const old = await addPath(storeDir, {
      name: 'race-old',
      refs: [await addPath(storeDir, { name: 'race-old-dep' })],
    });
    await push(direct, storeDir, [old], key);
    ageFiles(s3.dir, 10 * DAY);
    const lib = await addPath(storeDir, { name: 'race-new-lib' });
    const top = await addPath(storeDir, { name: 'race-new-top', refs: [lib] });
    const viaProxy = track(s3Store(proxy.endpoint, BUCKET, 'race-push'));
    let gc: GcResult | undefined;
    let topNarInfoDuringGc: boolean | undefined;
    proxy.onRequest = async (r) => {
      if (gc || r.method !== 'PUT' || !r.url.includes(narInfoKey(parseStorePath(top).hash))) return undefined;
      // The push has uploaded both NARs and lib's narinfo; top's narinfo waits here while gc runs.
      topNarInfoDuringGc = await direct.hasNarInfo(top);
      gc = await collectGarbage(direct, {});
      return undefined;
    };
    try {
      const r = await pushPaths(viaProxy, [top], { storeDir, secretKeys: [key] });
      expect(r.failed).toEqual([]);
    } finally {
      proxy.onRequest = undefined;
    }
    expect(topNarInfoDuringGc).toBe(false);
    // gc did run, and collected the old unpinned closure...
    expect(gc!.deleted.narinfo.objects).toBe(2);
    expect(await direct.hasNarInfo(old)).toBe(false);
    // ...but not the young NAR waiting for its narinfo, nor the young lib.
    expect(gc!.skipped).toEqual([]);
    const info = (await direct.getNarInfo(top))!;
    expect(await direct.backend.head(info.url)).toBeDefined();
    expect(await direct.hasNarInfo(lib)).toBe(true);
    expect((await checkInvariant(direct)).problems).toEqual([]);
    // The NAR streams and matches its hashes.
    for await (const _ of direct.getNar(info)) {
      // drain
    }
  });

  it('keeps an old, unpinned path that a push in flight refers to (its NAR is scanned)', async () => {
    const direct = track(s3Store(s3.endpoint, BUCKET, 'race-old-ref'));
    const oldDep = await addPath(storeDir, { name: 'race-reused-dep' });
    const oldOther = await addPath(storeDir, { name: 'race-unused' });
    await push(direct, storeDir, [oldDep, oldOther], key);
    ageFiles(s3.dir, 10 * DAY);
    // The push finds oldDep in the cache, uploads only its own NAR, and is held before its narinfo.
    const top = await addPath(storeDir, { name: 'race-reuser', refs: [oldDep] });
    const viaProxy = track(s3Store(proxy.endpoint, BUCKET, 'race-old-ref'));
    let gc: GcResult | undefined;
    proxy.onRequest = async (r) => {
      if (gc || r.method !== 'PUT' || !r.url.includes(narInfoKey(parseStorePath(top).hash))) return undefined;
      gc = await collectGarbage(direct, {});
      return undefined;
    };
    try {
      const r = await pushPaths(viaProxy, [top], { storeDir, secretKeys: [key] });
      expect(r.failed).toEqual([]);
      expect(r.skipped).toEqual([oldDep]);
    } finally {
      proxy.onRequest = undefined;
    }
    expect(gc!.deleted.narinfo.objects).toBe(1);
    expect(await direct.hasNarInfo(oldOther)).toBe(false);
    expect(await direct.hasNarInfo(oldDep)).toBe(true);
    expect((await checkInvariant(direct)).problems).toEqual([]);
  });

  it('re-checks each object just before deleting it: one rewritten since the listing stays, with its closure', async () => {
    const dir = join(tmp, 'recheck');
    const store = track(fileStore(dir));
    const depA = await addPath(storeDir, { name: 'recheck-dep-a' });
    const depB = await addPath(storeDir, { name: 'recheck-dep-b' });
    const a = await addPath(storeDir, { name: 'recheck-a', refs: [depA] });
    const b = await addPath(storeDir, { name: 'recheck-b', refs: [depB] });
    await push(store, storeDir, [a, b], key);
    ageFiles(dir, 10 * DAY);
    // a and b are both unreachable and on the first level; gc deletes them one a batch. Right
    // after the first goes, the other is rewritten (as by `push --force` or `sign`): the HEAD
    // before its delete sees that, so it stays, and so does its closure.
    let first: string | undefined;
    let other: string | undefined;
    const r = await collectGarbage(store, {
      batchSize: 1,
      onDelete: (objects) => {
        if (first || objects[0]!.kind !== 'narinfo') return;
        first = objects[0]!.key;
        other = [a, b].map((p) => narInfoKey(parseStorePath(p).hash)).find((k) => k !== first)!;
        const now = new Date();
        utimesSync(join(dir, other), now, now);
      },
    });
    expect(r.skipped).toEqual([{ key: other, reason: 'rewritten since it was listed' }]);
    expect(r.deleted.narinfo.objects).toBe(2); // the first and its dependency
    const kept = first === narInfoKey(parseStorePath(a).hash) ? [b, depB] : [a, depA];
    for (const p of kept) expect(await store.hasNarInfo(p)).toBe(true);
    expect((await checkInvariant(store)).problems).toEqual([]);
  });
});

describe('two pushers pinning the same name at once', () => {
  it('on file:// both revisions are kept, over many rounds', async () => {
    const a = await addPath(storeDir, { name: 'pin-a' });
    const b = await addPath(storeDir, { name: 'pin-b' });
    for (let round = 0; round < 10; round++) {
      const dir = join(tmp, `pin-race-${round}`);
      const s1 = track(fileStore(dir));
      const s2 = track(fileStore(dir));
      await push(s1, storeDir, [a, b], key);
      if (round % 2) await addPinRevision(s1, 'app', [a, b]); // update, not create
      await Promise.all([addPinRevision(s1, 'app', [a]), addPinRevision(s2, 'app', [b])]);
      const pin = (await getPin(s1, 'app'))!;
      const newest = pin.revisions.slice(0, 2).map((r) => r.paths.join(','));
      expect(newest.sort()).toEqual([a, b].sort());
    }
  });

  it('on s3rver a 412 (the other pinner won) makes the pinner re-read and keep both revisions', async () => {
    const direct = track(s3Store(s3.endpoint, BUCKET, 'pin-race'));
    const viaProxy = track(s3Store(proxy.endpoint, BUCKET, 'pin-race'));
    const a = await addPath(storeDir, { name: 'pin-s3-a' });
    const b = await addPath(storeDir, { name: 'pin-s3-b' });
    await push(direct, storeDir, [a, b], key);
    let raced = false;
    proxy.clear();
    proxy.onRequest = async (r) => {
      if (raced || r.method !== 'PUT' || !r.url.includes('pins/web.json')) return undefined;
      raced = true;
      // The other pusher's pin lands first; a real S3 refuses this If-None-Match with 412.
      await addPinRevision(direct, 'web', [b]);
      return faults.preconditionFailed;
    };
    try {
      await addPinRevision(viaProxy, 'web', [a]);
    } finally {
      proxy.onRequest = undefined;
    }
    const puts = proxy.find('PUT', 'pins/web.json');
    expect(puts.map((p) => p.status)).toEqual([412, 200]);
    expect(puts[0]!.headers['if-none-match']).toBe('*');
    expect(puts[1]!.headers['if-match']).toMatch(/^"[^"]+"$/);
    const pin = (await getPin(direct, 'web'))!;
    expect(pin.revisions.map((r) => r.paths[0])).toEqual([a, b]);
  });
});
