/**
 * Real Nix after gc and repair (issue 12). A cache with three pins of two kept revisions each,
 * old unpinned pushes and NARs shared by two narinfos is collected on file:// (served over HTTP)
 * and on s3rver (anonymous HTTP GET of the bucket); then real Nix substitutes every kept closure
 * of every kept revision from it, into a fresh store, trusting only the cache's key. A broken
 * cache (deleted NAR, deleted reference, truncated NAR) is repaired, and real Nix substitutes the
 * repaired closures.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { collectGarbage } from '../../src/cache/gc.js';
import { repairCache } from '../../src/cache/repair.js';
import { formatPublicKey, generateSecretKey, type SecretKey } from '../../src/signing/keys.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { narInfoKey } from '../../src/store/layout.js';
import { parseStorePath } from '../../src/store-path/store-path.js';
import {
  addPath,
  ageFiles,
  DAY,
  type GcScenario,
  makeGcScenario,
  push,
  pushScenario,
} from '../cache/gc-helpers.js';
import { describeWithNix } from '../helpers/env.js';
import { startHttpCache, type TestHttpServer } from '../helpers/http-server.js';
import { nixStatus } from '../helpers/nix.js';
import { type S3rverHandle, startS3rver } from '../helpers/s3rver.js';
import { checkInvariant, fileStore, s3Store } from '../reliability/helpers.js';

describeWithNix('real Nix substitutes from a collected and a repaired cache', () => {
  let tmp: string;
  let storeDir: string;
  let sc: GcScenario;
  let key: SecretKey;
  let pub: string;
  let s3: S3rverHandle;
  let fresh = 0;
  const servers: TestHttpServer[] = [];
  const stores: BinaryCacheStore[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'nixcache-interop-gc-'));
    storeDir = join(tmp, 'store');
    mkdirSync(storeDir);
    sc = await makeGcScenario(storeDir);
    key = generateSecretKey('interop-gc-1');
    pub = formatPublicKey(key.publicKey);
    s3 = await startS3rver({ buckets: ['interop-gc'] });
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await Promise.all(servers.map((s) => s.close()));
    await s3?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** `nix copy --from url` of paths (with their closures) into a fresh store. */
  async function substitute(url: string, paths: readonly string[]) {
    const target = join(tmp, `nix-${fresh++}`);
    const r = await nixStatus([
      'nix',
      'copy',
      '--from',
      url,
      '--to',
      target,
      ...paths,
      '--option',
      'trusted-public-keys',
      pub,
    ]);
    return { ...r, target };
  }

  async function collectAndSubstitute(store: BinaryCacheStore, ageDir: string, url: string) {
    const kept = await pushScenario(store, storeDir, sc, key);
    ageFiles(ageDir, 10 * DAY);
    const r = await collectGarbage(store, { keepDays: 7 });
    expect(r.deleted.narinfo.objects).toBeGreaterThan(0);
    expect(r.deleted.nar.objects).toBeGreaterThan(0);
    expect((await checkInvariant(store)).problems).toEqual([]);
    const ok = await substitute(url, kept);
    expect(ok.stderr).not.toMatch(/error/i);
    expect(ok.status).toBe(0);
    for (const p of [...kept, sc.twinKept]) expect(existsSync(join(ok.target, p))).toBe(true);
    // The collected paths are really gone for Nix.
    const gone = await substitute(url, [sc.unpinned[0]!]);
    expect(gone.status).not.toBe(0);
  }

  it('from file:// after gc: every kept closure of every kept revision', async () => {
    const dir = join(tmp, 'file-cache');
    const store = fileStore(dir);
    stores.push(store);
    const server = await startHttpCache(dir);
    servers.push(server);
    await collectAndSubstitute(store, dir, server.url);
  });

  it('from s3rver after gc (DeleteObjects): every kept closure of every kept revision', async () => {
    const store = s3Store(s3.endpoint, 'interop-gc', 'cache');
    stores.push(store);
    await collectAndSubstitute(store, s3.dir, `${s3.endpoint}/interop-gc/cache`);
  });

  it('from file:// after repair: the repaired closures', async () => {
    const dir = join(tmp, 'repair-cache');
    const store = fileStore(dir);
    stores.push(store);
    const ref = await addPath(storeDir, { name: 'ix-ref' });
    const a = await addPath(storeDir, { name: 'ix-nar-deleted', refs: [ref] });
    const b = await addPath(storeDir, { name: 'ix-truncated', payload: 'z'.repeat(40_000) });
    const c = await addPath(storeDir, { name: 'ix-top', refs: [a, b] });
    await push(store, storeDir, [c], key);
    await store.backend.delete((await store.getNarInfo(a))!.url);
    await store.backend.delete(narInfoKey(parseStorePath(ref).hash));
    const bUrl = (await store.getNarInfo(b))!.url;
    await store.backend.put(bUrl, (await store.getFile(bUrl))!.subarray(0, 64), {
      contentType: 'application/x-nix-nar',
    });
    const server = await startHttpCache(dir);
    servers.push(server);
    expect((await substitute(server.url, [c])).status).not.toBe(0);
    const r = await repairCache(store, { storeDir, secretKeys: [key] });
    expect(r.reports.map((x) => `${x.problem} ${x.action}`).sort()).toEqual([
      'missing-nar reuploaded',
      'missing-reference reuploaded',
      'wrong-size-nar reuploaded',
    ]);
    const ok = await substitute(server.url, [c]);
    expect(ok.stderr).not.toMatch(/error/i);
    expect(ok.status).toBe(0);
    for (const p of [a, b, c, ref]) expect(existsSync(join(ok.target, p))).toBe(true);
  });
});
