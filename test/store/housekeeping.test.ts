/**
 * The housekeeping part of the storage contract (issue 12) on file:// and s3rver: listings with
 * size and last-modified time, batch deletes (absent keys count as deleted; on S3 at most 1000
 * keys a DeleteObjects request, and per-key <Error> entries of the answer are returned, not
 * dropped), and incomplete uploads (file://: a writer's temporary and lock files).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/store/backend.js';
import { type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, startS3rver } from '../helpers/s3rver.js';
import { fileStore, s3Store } from '../reliability/helpers.js';

const BUCKET = 'housekeeping';
let tmp: string;
let s3: S3rverHandle;
let proxy: LoopbackProxy;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-housekeeping-'));
  s3 = await startS3rver({ buckets: [BUCKET] });
  proxy = await startProxy({ target: s3.endpoint, maxRecordBytes: 200_000 });
});

afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function contract(backend: StorageBackend): Promise<void> {
  const before = Date.now() - 2000;
  await backend.put('a.narinfo', new TextEncoder().encode('12345'), { contentType: 'text/x-nix-narinfo' });
  await backend.put('nar/x.nar', new Uint8Array(10), { contentType: 'application/x-nix-nar' });
  await backend.put('nar/y.nar', new Uint8Array(20), { contentType: 'application/x-nix-nar' });
  const all = [];
  for await (const o of backend.listObjects!('')) all.push(o);
  all.sort((a, b) => (a.key < b.key ? -1 : 1));
  expect(all.map((o) => [o.key, o.size])).toEqual([
    ['a.narinfo', 5],
    ['nar/x.nar', 10],
    ['nar/y.nar', 20],
  ]);
  for (const o of all) expect(o.lastModified).toBeGreaterThan(before);
  const top = [];
  for await (const o of backend.listObjects!('', { recursive: false })) top.push(o.key);
  expect(top).toEqual(['a.narinfo']);
  const head = await backend.head('nar/x.nar');
  expect(Math.abs(head!.lastModified! - all[1]!.lastModified)).toBeLessThan(1000);
  const r = await backend.deleteMany!(['nar/x.nar', 'nar/absent.nar', 'a.narinfo']);
  expect(r.errors).toEqual([]);
  expect([...r.deleted].sort()).toEqual(['a.narinfo', 'nar/absent.nar', 'nar/x.nar']);
  const left = [];
  for await (const o of backend.listObjects!('')) left.push(o.key);
  expect(left).toEqual(['nar/y.nar']);
}

describe('storage housekeeping', () => {
  it('file://: listObjects, deleteMany; scratch files are pending uploads, not objects', async () => {
    const dir = join(tmp, 'file');
    const store = fileStore(dir);
    await contract(store.backend);
    writeFileSync(join(dir, 'nar', 'z.nar.tmp.99.0'), 'partial');
    writeFileSync(join(dir, 'b.narinfo.lock'), '');
    const keys = [];
    for await (const o of store.backend.listObjects!('')) keys.push(o.key);
    expect(keys).toEqual(['nar/y.nar']);
    const pending = [];
    for await (const u of store.backend.listPendingUploads!()) pending.push([u.key, u.uploadId]);
    expect(pending.sort()).toEqual([
      ['b.narinfo', 'b.narinfo.lock'],
      ['nar/z.nar', 'nar/z.nar.tmp.99.0'],
    ]);
    for await (const u of store.backend.listPendingUploads!()) await store.backend.abortPendingUpload!(u);
    const after = [];
    for await (const u of store.backend.listPendingUploads!()) after.push(u);
    expect(after).toEqual([]);
    await expect(
      store.backend.abortPendingUpload!({ key: 'nar/y.nar', uploadId: 'nar/y.nar', initiated: 0 }),
    ).rejects.toThrow(/not a temporary or lock file/);
  });

  it('s3rver: listObjects (ListObjectsV2 Size/LastModified), deleteMany (DeleteObjects)', async () => {
    const store = s3Store(s3.endpoint, BUCKET, 'contract');
    await contract(store.backend);
    await store.close();
  });

  it('s3: at most 1000 keys a DeleteObjects request, and per-key errors are returned', async () => {
    const store = s3Store(proxy.endpoint, BUCKET, 'many');
    const keys = Array.from({ length: 1203 }, (_, i) => `nar/k${i}.nar`);
    proxy.clear();
    proxy.onRequest = (r) => {
      if (r.method !== 'POST' || !r.url.includes('?delete')) return undefined;
      // The server refuses one key of the second request (as S3 does for, e.g., AccessDenied).
      if (proxy.find('POST', '?delete').length < 2) return undefined;
      return {
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'application/xml' },
        body:
          '<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error><Key>many/nar/k1100.nar</Key>' +
          '<Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>',
      };
    };
    try {
      const r = await store.backend.deleteMany!(keys);
      expect(r.errors).toEqual([{ key: 'nar/k1100.nar', code: 'AccessDenied', message: 'Access Denied' }]);
      expect(r.deleted).toHaveLength(1202);
    } finally {
      proxy.onRequest = undefined;
    }
    const posts = proxy.find('POST', '?delete');
    expect(posts).toHaveLength(2);
    expect(posts.map((p) => (p.text().match(/<Key>/g) ?? []).length)).toEqual([1000, 203]);
    expect(posts[0]!.text()).toContain('<Quiet>true</Quiet>');
    expect(posts[0]!.headers['content-md5']).toBeDefined();
    await store.close();
  });
});
