/**
 * repair (issue 12) fixes each fault kind on file:// and on s3rver: a deleted NAR (re-uploaded
 * from the local store directory, or from another cache when the local store lacks the path), a
 * deleted reference (pushed again, signed), a truncated NAR, a NAR nobody has (its narinfo and
 * every narinfo whose closure it completes are deleted, referrers first), and stale incomplete
 * uploads. s3rver answers NotImplemented to ListMultipartUploads and 405 to AbortMultipartUpload,
 * so the test proxy serves that one listing (one stale upload, one fresh) and answers the abort,
 * recording what nixcache asked for. Afterwards `checkClosures` (verify --closure) finds no hole,
 * every path verifies, and a second repair finds nothing.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkClosures } from '../../src/cache/closure-check.js';
import { repairCache } from '../../src/cache/repair.js';
import { generateSecretKey, type SecretKey } from '../../src/signing/keys.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { narInfoKey } from '../../src/store/layout.js';
import { parseStorePath } from '../../src/store-path/store-path.js';
import { type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, startS3rver } from '../helpers/s3rver.js';
import { verifyReports } from '../helpers/verify.js';
import { checkInvariant, fileStore, s3Store } from '../reliability/helpers.js';
import { addPath, DAY, push } from './gc-helpers.js';

const BUCKET = 'repair-test';
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

interface Faulty {
  readonly p1: string;
  readonly p2: string;
  readonly r2: string;
  readonly p3: string;
  readonly q4: string;
  readonly p4: string;
  readonly top5: string;
  readonly p6: string;
}
let paths: Faulty;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-repair-'));
  storeDir = join(tmp, 'store');
  mkdirSync(storeDir);
  key = generateSecretKey('repair-test-1');
  const d1 = await addPath(storeDir, { name: 'rp-dep-1' });
  const p1 = await addPath(storeDir, { name: 'rp-nar-deleted', refs: [d1] });
  const r2 = await addPath(storeDir, { name: 'rp-ref-deleted' });
  const p2 = await addPath(storeDir, { name: 'rp-needs-ref', refs: [r2] });
  const p3 = await addPath(storeDir, { name: 'rp-nar-truncated', payload: 'y'.repeat(50_000) });
  const q4 = await addPath(storeDir, { name: 'rp-lost' });
  const p4 = await addPath(storeDir, { name: 'rp-needs-lost', refs: [q4] });
  const top5 = await addPath(storeDir, { name: 'rp-top', refs: [p4, p1] });
  const p6 = await addPath(storeDir, { name: 'rp-elsewhere' });
  paths = { p1, p2, r2, p3, q4, p4, top5, p6 };
  s3 = await startS3rver({ buckets: [BUCKET] });
  proxy = await startProxy({ target: s3.endpoint, maxRecordBytes: 4096 });
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await proxy?.close();
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Pushes everything, then breaks the cache; returns the local store directory repair may use. */
async function breakCache(store: BinaryCacheStore, other: BinaryCacheStore, name: string): Promise<string> {
  const { p1, p2, r2, p3, q4, top5, p6 } = paths;
  await push(store, storeDir, [top5, p2, p3, p6], key);
  await push(other, storeDir, [p6], key);
  const nar = async (p: string) => (await store.getNarInfo(p))!.url;
  await store.backend.delete(await nar(p1));
  await store.backend.delete(narInfoKey(parseStorePath(r2).hash));
  const truncated = (await store.getFile(await nar(p3)))!;
  await store.backend.put(await nar(p3), truncated.subarray(0, 100), {
    contentType: 'application/x-nix-nar',
  });
  await store.backend.delete(await nar(q4));
  await store.backend.delete(await nar(p6));
  // The local store repair reads from lacks the lost path and the one only another cache has.
  const local = join(tmp, `local-${name}`);
  cpSync(storeDir, local, { recursive: true });
  for (const p of [q4, p6]) rmSync(join(local, p.slice('/nix/store/'.length)), { recursive: true });
  return local;
}

function summary(reports: readonly { problem: string; action: string; path?: string; key?: string }[]) {
  return reports.map((r) => `${r.problem} ${r.action} ${r.path ?? r.key}`).sort();
}

async function expectRepaired(store: BinaryCacheStore): Promise<void> {
  expect(await checkClosures(store)).toEqual([]);
  const verified = await verifyReports(store, { trustedKeys: [key.publicKey] });
  expect(verified.reports.filter((r) => r.status !== 'ok')).toEqual([]);
  expect((await checkInvariant(store)).problems).toEqual([]);
  const { p1, p2, r2, p3, q4, p4, top5, p6 } = paths;
  for (const p of [p1, p2, r2, p3, p6]) expect(await store.hasNarInfo(p)).toBe(true);
  for (const p of [q4, p4, top5]) expect(await store.hasNarInfo(p)).toBe(false);
}

function expectedReports(extra: string[]): string[] {
  const { p1, p2, p3, q4, p4, top5, p6 } = paths;
  return [
    `missing-nar reuploaded ${p1}`,
    `missing-reference reuploaded ${p2}`,
    `wrong-size-nar reuploaded ${p3}`,
    `missing-nar reuploaded ${p6}`,
    `missing-nar deleted ${q4}`,
    `incomplete-closure deleted ${p4}`,
    `incomplete-closure deleted ${top5}`,
    ...extra,
  ].sort();
}

describe('repair', () => {
  it('on file:// fixes every fault kind, including stale temporary files', async () => {
    const dir = join(tmp, 'file-cache');
    const store = track(fileStore(dir));
    const other = track(fileStore(join(tmp, 'file-other')));
    const local = await breakCache(store, other, 'file');
    // A writer killed long ago left a temporary file; one writing now has a fresh one.
    mkdirSync(join(dir, 'nar'), { recursive: true });
    const stale = join(dir, 'nar', 'abc.nar.zst.tmp.4242.0');
    writeFileSync(stale, 'partial');
    utimesSync(stale, new Date(Date.now() - 2 * DAY), new Date(Date.now() - 2 * DAY));
    writeFileSync(join(dir, 'nar', 'def.nar.zst.tmp.4343.0'), 'in progress');
    const holes = await checkClosures(store);
    expect(holes.map((h) => h.problem).sort()).toEqual([
      'missing-nar',
      'missing-nar',
      'missing-nar',
      'missing-reference',
      'wrong-size-nar',
    ]);

    const dry = await repairCache(store, { storeDir: local, from: [other], secretKeys: [key], dryRun: true });
    expect(await checkClosures(store)).toHaveLength(holes.length);
    const r = await repairCache(store, { storeDir: local, from: [other], secretKeys: [key] });
    expect(summary(r.reports)).toEqual(expectedReports(['stale-upload aborted nar/abc.nar.zst']));
    expect(summary(dry.reports)).toEqual(summary(r.reports));
    expect(r.pendingUploadsUnsupported).toBe(false);
    await expectRepaired(store);
    expect((await repairCache(store, { storeDir: local, from: [other] })).reports).toEqual([]);
  });

  it('reads the narinfos of the broken paths several at a time', async () => {
    const store = track(fileStore(join(tmp, 'file-cache-parallel')));
    const other = track(fileStore(join(tmp, 'file-other-parallel')));
    const local = await breakCache(store, other, 'parallel');
    // Here the deleted reference cannot be brought back either: its referrer goes, naming it.
    rmSync(join(local, paths.r2!.slice('/nix/store/'.length)), { recursive: true });
    // The scan reads every narinfo once; repair then reads those of the broken paths again: those
    // second reads take 20 ms each here, and overlap unless they are made one after the other.
    const reads = new Map<string, number>();
    let inFlight = 0;
    let most = 0;
    const getNarInfo = store.getNarInfo.bind(store);
    store.getNarInfo = (async (query: string, options?: { signal?: AbortSignal }) => {
      const n = (reads.get(query) ?? 0) + 1;
      reads.set(query, n);
      if (n < 2) return getNarInfo(query, options);
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 20));
        return await getNarInfo(query, options);
      } finally {
        inFlight--;
      }
    }) as typeof store.getNarInfo;
    const r = await repairCache(store, { storeDir: local, from: [other], secretKeys: [key], dryRun: true });
    const expected = expectedReports([]).map((line) =>
      line === `missing-reference reuploaded ${paths.p2}` ? `missing-reference deleted ${paths.p2}` : line,
    );
    expect(summary(r.reports)).toEqual(expected.sort());
    expect(r.reports.find((x) => x.path === paths.p2)?.detail).toBe(paths.r2);
    // Five narinfos are concerned: four broken NARs and the path whose reference is gone.
    expect(most).toBeGreaterThanOrEqual(3);
  });

  it('on s3rver fixes every fault kind; stale multipart uploads through the proxy', async () => {
    const direct = track(s3Store(s3.endpoint, BUCKET, 'cache'));
    const other = track(s3Store(s3.endpoint, BUCKET, 'other'));
    const local = await breakCache(direct, other, 's3');
    const viaProxy = track(s3Store(proxy.endpoint, BUCKET, 'cache'));
    const old = new Date(Date.now() - 3 * DAY).toISOString();
    const now = new Date().toISOString();
    proxy.clear();
    proxy.onRequest = (r) => {
      // s3rver has no ListMultipartUploads (501) and no AbortMultipartUpload (405): the proxy
      // serves the listing (a stale upload and a fresh one) and accepts the abort.
      if (r.method === 'GET' && /\?(.*&)?uploads(=|&|$)/.test(r.url)) {
        const upload = (k: string, id: string, at: string) =>
          `<Upload><Key>${k}</Key><UploadId>${id}</UploadId><Initiated>${at}</Initiated></Upload>`;
        return {
          kind: 'status',
          status: 200,
          headers: { 'content-type': 'application/xml' },
          body:
            `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${BUCKET}</Bucket>` +
            `<IsTruncated>false</IsTruncated>${upload('cache/nar/stale.nar.zst', 'stale-1', old)}` +
            `${upload('cache/nar/fresh.nar.zst', 'fresh-1', now)}</ListMultipartUploadsResult>`,
        };
      }
      if (r.method === 'DELETE' && r.url.includes('uploadId=')) return { kind: 'status', status: 204 };
      return undefined;
    };
    try {
      const r = await repairCache(viaProxy, { storeDir: local, from: [other], secretKeys: [key] });
      expect(summary(r.reports)).toEqual(expectedReports(['stale-upload aborted nar/stale.nar.zst']));
    } finally {
      proxy.onRequest = undefined;
    }
    const list = proxy.find('GET', 'uploads');
    expect(list).toHaveLength(1);
    expect(list[0]!.url).toContain('prefix=cache%2F');
    const aborts = proxy.find('DELETE', 'uploadId=');
    expect(aborts.map((a) => a.url.replace(/&x-id=.*$/, ''))).toEqual([
      `/${BUCKET}/cache/nar/stale.nar.zst?uploadId=stale-1`,
    ]);
    // The narinfos went in one DeleteObjects request a level.
    expect(proxy.find('POST', '?delete').length).toBeGreaterThanOrEqual(3);
    await expectRepaired(direct);
  });

  it('on s3rver without the proxy reports that incomplete uploads cannot be listed', async () => {
    const store = track(s3Store(s3.endpoint, BUCKET, 'plain'));
    const r = await repairCache(store, { storeDir: false });
    expect(r.pendingUploadsUnsupported).toBe(true);
    expect(r.reports).toEqual([]);
  });
});
