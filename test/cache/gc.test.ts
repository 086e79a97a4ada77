/**
 * gc with pins on file:// and s3rver (issue 12): a cache with three pins of two kept revisions
 * each (a third, older revision dropped by keepRevisions 2), old unpinned pushes, and NARs shared
 * by two narinfos. After gc every kept closure is complete, every deleted object was unreachable,
 * the bytes reported are the sizes of the deleted objects, and a second gc deletes nothing.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindOfKey } from '../../src/cache/cache-graph.js';
import { collectGarbage, type GcObject } from '../../src/cache/gc.js';
import { getPin, listPins } from '../../src/cache/pins.js';
import { generateSecretKey, type SecretKey } from '../../src/signing/keys.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { narInfoKey } from '../../src/store/layout.js';
import { parseStorePath } from '../../src/store-path/store-path.js';
import { type S3rverHandle, startS3rver } from '../helpers/s3rver.js';
import { checkInvariant, fileStore, s3Store } from '../reliability/helpers.js';
import {
  ageFiles,
  closureKeys,
  DAY,
  type GcScenario,
  makeGcScenario,
  push,
  pushScenario,
  snapshot,
} from './gc-helpers.js';

let tmp: string;
let storeDir: string;
let sc: GcScenario;
let key: SecretKey;
let s3: S3rverHandle;
const stores: BinaryCacheStore[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-gc-'));
  storeDir = join(tmp, 'store');
  mkdirSync(storeDir);
  sc = await makeGcScenario(storeDir);
  key = generateSecretKey('gc-test-1');
  s3 = await startS3rver({ buckets: ['gc-test'] });
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const fillScenario = (store: BinaryCacheStore) => pushScenario(store, storeDir, sc, key);

async function runScenario(store: BinaryCacheStore, ageDir: string): Promise<void> {
  const keptRoots = await fillScenario(store);
  const pins = await listPins(store);
  expect(pins.map((p) => p.name)).toEqual(['alpha', 'beta', 'gamma']);
  for (const p of pins) expect(p.revisions).toHaveLength(2);
  expect((await getPin(store, 'alpha'))!.revisions.map((r) => r.paths[0])).toEqual([
    sc.pins.alpha![2]![0],
    sc.pins.alpha![1]![0],
  ]);
  // Everything so far was pushed ten days ago.
  ageFiles(ageDir, 10 * DAY);

  const before = await snapshot(store);
  const reachable = await closureKeys(store, keptRoots);
  const reported: GcObject[] = [];
  const r = await collectGarbage(store, { keepDays: 7, batchSize: 7, onDelete: (b) => reported.push(...b) });
  const after = await snapshot(store);

  const gone = [...before.keys()].filter((k) => !after.has(k)).sort();
  const collectable = [...before.keys()].filter((k) => kindOfKey(k) !== 'other' && !reachable.has(k)).sort();
  expect(gone).toEqual(collectable);
  expect(reported.map((o) => o.key).sort()).toEqual(gone);
  for (const k of gone) expect(reachable.has(k)).toBe(false);
  for (const k of reachable) if (before.has(k)) expect(after.has(k)).toBe(true);
  for (const kind of ['narinfo', 'ls', 'nar'] as const) {
    const keys = gone.filter((k) => kindOfKey(k) === kind);
    expect(r.deleted[kind].objects).toBe(keys.length);
    expect(r.deleted[kind].bytes).toBe(keys.reduce((n, k) => n + before.get(k)!, 0));
    const left = [...after.keys()].filter((k) => kindOfKey(k) === kind);
    expect(r.kept[kind].objects).toBe(left.length);
    expect(r.kept[kind].bytes).toBe(left.reduce((n, k) => n + after.get(k)!, 0));
  }
  expect(r.roots).toMatchObject({ pins: 3, pinRevisions: 6, explicit: 0, recent: 0 });
  expect(r.missingRoots).toEqual([]);
  // What went: the dropped revisions, the unpinned pushes, both twins of the unkept pair, and the
  // unkept twin's narinfo; the NAR it shared with a kept twin stays.
  for (const p of [...sc.dropped, ...sc.unpinned, ...sc.twinsGone, sc.twinGone])
    expect(after.has(narInfoKey(parseStorePath(p).hash))).toBe(false);
  const twinKept = (await store.getNarInfo(sc.twinKept))!;
  expect(after.has(twinKept.url)).toBe(true);
  expect(r.deleted.nar.objects).toBeGreaterThan(0);
  expect((await checkInvariant(store)).problems).toEqual([]);

  const again = await collectGarbage(store, { keepDays: 7 });
  expect(again.deleted).toEqual({
    narinfo: { objects: 0, bytes: 0 },
    ls: { objects: 0, bytes: 0 },
    nar: { objects: 0, bytes: 0 },
  });
}

describe('gc with pins', () => {
  it('on file:// keeps every pinned closure and deletes only what is unreachable', async () => {
    const dir = join(tmp, 'file-cache');
    const store = fileStore(dir);
    stores.push(store);
    await runScenario(store, dir);
  });

  it('on s3rver keeps every pinned closure and deletes only what is unreachable (DeleteObjects)', async () => {
    const store = s3Store(s3.endpoint, 'gc-test', 'scenario');
    stores.push(store);
    await runScenario(store, s3.dir);
  });

  it('--dry-run lists exactly what a real run deletes, and changes nothing', async () => {
    const dir = join(tmp, 'file-dry');
    const store = fileStore(dir);
    stores.push(store);
    await fillScenario(store);
    ageFiles(dir, 10 * DAY);
    const before = await snapshot(store);
    const would: string[] = [];
    const dry = await collectGarbage(store, {
      dryRun: true,
      onDelete: (b) => would.push(...b.map((o) => o.key)),
    });
    expect(await snapshot(store)).toEqual(before);
    const did: string[] = [];
    const real = await collectGarbage(store, { onDelete: (b) => did.push(...b.map((o) => o.key)) });
    expect(would.sort()).toEqual(did.sort());
    expect(dry.deleted).toEqual(real.deleted);
  });

  it('keeps narinfos uploaded within keepDays and within the grace period, with their closures', async () => {
    const dir = join(tmp, 'file-recent');
    const store = fileStore(dir);
    stores.push(store);
    await push(store, storeDir, sc.unpinned, key);
    ageFiles(dir, 3 * DAY);
    const keep7 = await collectGarbage(store, { keepDays: 7, dryRun: true });
    expect(keep7.deleted.narinfo.objects).toBe(0);
    expect(keep7.roots.recent).toBeGreaterThan(0);
    const keep1 = await collectGarbage(store, { keepDays: 1, dryRun: true });
    expect(keep1.deleted.narinfo.objects).toBeGreaterThan(0);
    const grace = await collectGarbage(store, { graceMs: 4 * DAY, dryRun: true });
    expect(grace.deleted.narinfo.objects + grace.deleted.nar.objects).toBe(0);
  });

  it('keeps the closures of explicit roots and reports roots the cache lacks', async () => {
    const dir = join(tmp, 'file-roots');
    const store = fileStore(dir);
    stores.push(store);
    await push(store, storeDir, sc.unpinned, key);
    ageFiles(dir, 3 * DAY);
    const missing = '/nix/store/00000000000000000000000000000000-nothing';
    const r = await collectGarbage(store, { roots: [sc.unpinned[0]!, missing] });
    expect(r.missingRoots).toEqual([missing]);
    expect(await store.hasNarInfo(sc.unpinned[0]!)).toBe(true);
    expect(await store.hasNarInfo(sc.unpinned[1]!)).toBe(false);
    expect((await checkInvariant(store)).problems).toEqual([]);
  });
});
