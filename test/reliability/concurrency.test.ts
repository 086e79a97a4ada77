/**
 * Concurrency (issue 7): two pushes of overlapping closures at once leave a consistent cache (on
 * s3rver and on file://), and two signers adding different signatures to the same narinfos at once
 * lose neither. On file:// the race is real (lock file + etag conditional writes). s3rver ignores
 * If-Match, so the race cannot be proven there: the test shows the header is sent, and emulates
 * the lost race with a 412 from the proxy, after which the signer re-reads and keeps both.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushPaths } from '../../src/cache/push.js';
import { generateSecretKey, type SecretKey } from '../../src/signing/keys.js';
import { verifyNarInfo } from '../../src/signing/verify.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { faults, type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, startS3rver } from '../helpers/s3rver.js';
import { signLists } from '../helpers/sign.js';
import { verifyReports } from '../helpers/verify.js';
import { type BigSampleStore, checkInvariant, fileStore, makeBigSampleStore, s3Store } from './helpers.js';

const BUCKET = 'concurrency';
let s3: S3rverHandle;
let proxy: LoopbackProxy;
let tmp: string;
let sample: BigSampleStore;
let k1: SecretKey;
let k2: SecretKey;
const stores: BinaryCacheStore[] = [];

function track<T extends BinaryCacheStore>(s: T): T {
  stores.push(s);
  return s;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-concurrency-'));
  mkdirSync(join(tmp, 'store'));
  sample = await makeBigSampleStore(join(tmp, 'store'), 6);
  k1 = generateSecretKey('signer-one-1');
  k2 = generateSecretKey('signer-two-1');
  s3 = await startS3rver({ buckets: [BUCKET] });
  proxy = await startProxy({ target: s3.endpoint, maxRecordBytes: 4096 });
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await proxy?.close();
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function twoOverlappingPushes(a: BinaryCacheStore, b: BinaryCacheStore): Promise<void> {
  // hello → lib → data and big → data: both pushes want data, the second also wants lib.
  const [ra, rb] = await Promise.all([
    pushPaths(a, [sample.hello], { storeDir: sample.dir, secretKeys: [k1], parallelism: 3 }),
    pushPaths(b, [sample.big, sample.lib], { storeDir: sample.dir, secretKeys: [k1], parallelism: 3 }),
  ]);
  expect(ra.failed).toEqual([]);
  expect(rb.failed).toEqual([]);
  const report = await checkInvariant(a);
  expect(report.problems).toEqual([]);
  expect(report.narinfos).toBe(4);
  const verified = await verifyReports(a, { trustedKeys: [k1.publicKey] });
  expect(verified.reports.filter((r) => r.status !== 'ok')).toEqual([]);
  expect(verified.summary.ok).toBe(4);
}

describe('two pushes of overlapping closures at once', () => {
  it('on the same s3rver bucket leave a consistent cache', async () => {
    await twoOverlappingPushes(
      track(s3Store(s3.endpoint, BUCKET, 'push')),
      track(s3Store(s3.endpoint, BUCKET, 'push')),
    );
  });

  it('on the same file:// cache leave a consistent cache', async () => {
    const dir = join(tmp, 'file-push');
    await twoOverlappingPushes(track(fileStore(dir)), track(fileStore(dir)));
  });
});

/** Pushes the four sample paths unsigned; returns them. */
async function seed(store: BinaryCacheStore): Promise<readonly string[]> {
  const r = await pushPaths(store, [sample.hello, sample.big], { storeDir: sample.dir });
  expect(r.failed).toEqual([]);
  return r.pushed;
}

function signersOf(info: Parameters<typeof verifyNarInfo>[0]): string[] {
  return verifyNarInfo(info, [k1.publicKey, k2.publicKey]).signedBy.slice().sort();
}

describe('two signers at once', () => {
  it('on file:// (lock file + etag) lose neither signature, over many rounds', async () => {
    for (let round = 0; round < 8; round++) {
      const dir = join(tmp, `file-sign-${round}`);
      const a = track(fileStore(dir));
      const b = track(fileStore(dir));
      const paths = await seed(a);
      const [ra, rb] = await Promise.all([
        signLists(a, 'all', [k1], { parallelism: 4 }),
        signLists(b, paths, [k2], { parallelism: 4 }),
      ]);
      expect(ra.failed).toEqual([]);
      expect(rb.failed).toEqual([]);
      for (const p of paths)
        expect(signersOf((await a.getNarInfo(p))!)).toEqual(['signer-one-1', 'signer-two-1']);
    }
  });

  it('on S3 sends If-Match with the ETag it read', async () => {
    const direct = track(s3Store(s3.endpoint, BUCKET, 'sign-headers'));
    const paths = await seed(direct);
    const etags = new Map<string, string>();
    for (const p of paths) {
      const key = `${p.slice(11, 43)}.narinfo`;
      etags.set(key, (await direct.backend.head(key))!.etag!);
    }
    const viaProxy = track(s3Store(proxy.endpoint, BUCKET, 'sign-headers'));
    proxy.clear();
    const r = await signLists(viaProxy, paths, [k1]);
    expect(r.signed).toHaveLength(4);
    const puts = proxy.find('PUT', /\.narinfo/);
    expect(puts).toHaveLength(4);
    for (const put of puts) {
      const key = put.url.replace(/\?.*$/, '').split('/').at(-1)!;
      // The ETag of the version it read, quoted (s3rver ignores the header, so the race itself
      // cannot be shown on s3rver).
      expect(put.headers['if-match']).toBe(etags.get(key));
      expect(put.headers['if-match']).toMatch(/^"[^"]+"$/);
    }
  });

  it('on S3, a 412 (the other signer won the race) makes the signer re-read and keep both signatures', async () => {
    const direct = track(s3Store(s3.endpoint, BUCKET, 'sign-412'));
    const paths = await seed(direct);
    const target = paths[0]!;
    const hash = target.slice(11, 43);
    const viaProxy = track(s3Store(proxy.endpoint, BUCKET, 'sign-412'));
    proxy.clear();
    let raced = false;
    proxy.onRequest = async (r) => {
      if (raced || r.method !== 'PUT' || !r.url.includes(`${hash}.narinfo`)) return undefined;
      raced = true;
      // The other signer's write lands first (straight to s3rver), so this If-Match is stale:
      // a real S3 answers 412 here, which the proxy plays for s3rver.
      const other = await signLists(direct, [target], [k2]);
      expect(other.signed).toEqual([target]);
      return faults.preconditionFailed;
    };
    try {
      const r = await signLists(viaProxy, [target], [k1]);
      expect(r.failed).toEqual([]);
      expect(r.signed).toEqual([target]);
    } finally {
      proxy.onRequest = undefined;
    }
    const requests = proxy.requests
      .filter((q) => q.url.includes(`${hash}.narinfo`))
      .map((q) => `${q.method} ${q.status ?? '-'}`);
    // read, refused write, read again, accepted write
    expect(requests).toEqual(['GET 200', 'PUT 412', 'GET 200', 'PUT 200']);
    expect(signersOf((await direct.getNarInfo(target))!)).toEqual(['signer-one-1', 'signer-two-1']);
  });
});
