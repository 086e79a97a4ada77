/**
 * `lint` on S3 (s3rver): a cache nixcache pushed is clean, and `--fix` rewrites with the
 * conditional writes of `sign`: when another writer adds a signature first (a 412, which the proxy plays
 * for s3rver since it ignores If-Match), the fix is applied again to what that signer wrote, and
 * both the canonical form and the new signature are kept.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initCache } from '../../src/cache/init.js';
import { type LintReport, lintCache } from '../../src/cache/lint.js';
import { pushPaths } from '../../src/cache/push.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { generateSecretKey } from '../../src/signing/keys.js';
import { signNarInfo } from '../../src/signing/sign.js';
import { verifyNarInfo } from '../../src/signing/verify.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { faults, type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, startS3rver } from '../helpers/s3rver.js';
import { s3Store } from '../reliability/helpers.js';
import { makeSourceStore, type SourceStore } from './helpers.js';

const BUCKET = 'lint';
let work: string;
let source: SourceStore;
let s3: S3rverHandle;
let proxy: LoopbackProxy;
const stores: BinaryCacheStore[] = [];
const k1 = generateSecretKey('lint-s3-one-1');
const k2 = generateSecretKey('lint-s3-two-1');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-lint-s3-'));
  source = await makeSourceStore(join(work, 'store'));
  s3 = await startS3rver({ buckets: [BUCKET] });
  proxy = await startProxy({ target: s3.endpoint });
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await proxy?.close();
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

it('is clean on what push wrote; --fix loses no signature to a concurrent signer', async () => {
  const direct = s3Store(s3.endpoint, BUCKET, 'c', 'compression=xz&write-nar-listing=1');
  const viaProxy = s3Store(proxy.endpoint, BUCKET, 'c', 'compression=xz&write-nar-listing=1');
  stores.push(direct, viaProxy);
  await initCache(direct, {});
  const pushed = await pushPaths(direct, [source.hello, source.note], {
    storeDir: source.dir,
    secretKeys: [k1],
  });
  expect(pushed.failed).toEqual([]);
  const clean: LintReport[] = [];
  expect(await lintCache(direct, { onFinding: (f) => void clean.push(f) })).toMatchObject({
    narinfos: 4,
    findings: 0,
  });
  expect(clean).toEqual([]);

  // A quirk: a legacy System line on hello.
  const hash = source.hello.slice(11, 43);
  const key = `${hash}.narinfo`;
  const text = new TextDecoder().decode(await direct.getFile(key));
  const quirky = `${text}System: x86_64-linux\n`;
  await direct.putFile(key, new TextEncoder().encode(quirky));

  proxy.clear();
  let raced = false;
  proxy.onRequest = async (r) => {
    if (raced || r.method !== 'PUT' || !r.url.includes(key)) return undefined;
    raced = true;
    // Another tool signs and keeps the file as it is (System line included), adding a Sig line.
    const sig = signNarInfo(parseNarInfo(quirky), k2).sigs.find((x) => x.startsWith('lint-s3-two-1:'))!;
    await direct.putFile(key, new TextEncoder().encode(`${quirky}Sig: ${sig}\n`));
    return faults.preconditionFailed;
  };
  const reports: LintReport[] = [];
  try {
    const summary = await lintCache(viaProxy, { fix: true, onFinding: (f) => void reports.push(f) });
    expect(summary).toMatchObject({ findings: 1, fixed: 1, unfixed: 0 });
  } finally {
    proxy.onRequest = undefined;
  }
  expect(reports.map((f) => `${f.rule} ${f.fixed}`)).toEqual(['non-canonical true']);
  const requests = proxy.requests.filter((q) => q.url.includes(key)).map((q) => `${q.method} ${q.status}`);
  // lint's read, the fix's read, refused write, read again, accepted write
  expect(requests).toEqual(['GET 200', 'GET 200', 'PUT 412', 'GET 200', 'PUT 200']);
  const info = (await direct.getNarInfo(source.hello))!;
  expect(verifyNarInfo(info, [k1.publicKey, k2.publicKey]).signedBy.slice().sort()).toEqual([
    'lint-s3-one-1',
    'lint-s3-two-1',
  ]);
  expect(new TextDecoder().decode(await direct.getFile(key))).not.toContain('System:');
  expect(await lintCache(direct)).toMatchObject({ findings: 0 });
});
