/**
 * The seed's workflow on S3 end to end with real Nix: nixcache initialises a bucket in s3rver and
 * pushes a closure signed with a key from `nix key generate-secret`; real Nix substitutes it over
 * plain HTTP (s3rver serves anonymous GETs) and refuses it when it should, as verifyCache does.
 * A cache written by real Nix is copied into S3 by nixcache and substituted from there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyPaths, initCache, pushPaths } from '../../src/cache/index.js';
import { formatNarInfo, type SecretKey } from '../../src/index.js';
import { collectBytes } from '../../src/internal/iter.js';
import { type BinaryCacheStore, openStore } from '../../src/store/index.js';
import type { S3Backend } from '../../src/store/s3.js';
import { describeWithNix } from '../helpers/env.js';
import {
  buildFixtureClosure,
  type FixtureClosure,
  nix,
  nixSigningKey,
  nixSubstitute,
} from '../helpers/nix.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { verifyReports } from '../helpers/verify.js';

describeWithNix('real Nix substitutes from an S3 cache nixcache made', () => {
  const work = mkdtempSync(join(tmpdir(), 'nixcache-interop-s3-'));
  let s3: S3rverHandle;
  let closure: FixtureClosure;
  let key: SecretKey;
  let keyFile: string;
  let pub: string;
  let fresh = 0;

  beforeAll(async () => {
    s3 = await startS3rver();
    Object.assign(process.env, s3ConfigFor(s3.endpoint, 'x').env, {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '1',
    });
    closure = buildFixtureClosure();
    ({ keyFile, key, publicKey: pub } = nixSigningKey(work, 's3-interop'));
  });
  afterAll(async () => {
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  function substitute(bucket: string, trustedKey: string, path = closure.app) {
    return nixSubstitute(`${s3.endpoint}/${bucket}`, join(work, `fresh-${fresh++}`), path, trustedKey);
  }

  async function newCache(bucket: string): Promise<BinaryCacheStore> {
    const store = await openStore(s3ConfigFor(s3.endpoint, bucket).url, { onWarning: () => {} });
    await expect(initCache(store, { priority: 40, wantMassQuery: true, publicRead: true })).rejects.toThrow(
      /bucket polic.*(s3rver|501|NotImplemented)|NotImplemented|not implement/i,
    );
    // s3rver has no bucket policies; without publicRead the rest of init works (and s3rver serves GETs anyway).
    await initCache(store, { priority: 40, wantMassQuery: true });
    return store;
  }

  it('pushes a closure with references, a deriver and a self-reference; nix copy --from substitutes it', async () => {
    const store = await newCache('pushed');
    const metadata = new Map(
      [...closure.metadata].map(([p, m]) => [p, m.deriver ? { deriver: m.deriver } : {}]),
    );
    const result = await pushPaths(store, [closure.app], {
      storeDir: '/nix/store',
      secretKeys: [key],
      metadata,
    });
    expect(result.failed).toEqual([]);
    expect(result.pushed).toEqual([closure.dep, closure.lib, closure.app]);
    const app = (await store.getNarInfo(closure.app))!;
    expect(app.references).toContain(basename(closure.app));
    expect(app.deriver).toBe(basename(closure.metadata.get(closure.app)!.deriver!));
    const r = await substitute('pushed', pub);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect((await verifyReports(store, { trustedKeys: [pub] })).summary).toMatchObject({ total: 3, ok: 3 });
  });

  it('is refused by real Nix and by verifyCache with a wrong key, a flipped signature or a flipped NAR byte', async () => {
    const store = await newCache('tampered');
    const backend = store.backend as S3Backend;
    await pushPaths(store, [closure.app], { storeDir: '/nix/store', secretKeys: [key] });
    const otherKey = nix(
      ['nix', 'key', 'convert-secret-to-public'],
      nix(['nix', 'key', 'generate-secret', '--key-name', 'other-1']),
    );
    const statusOf = async (trusted: string, path: string) =>
      (await verifyReports(store, { trustedKeys: [trusted] })).reports.find((r) => r.storePath === path)
        ?.status;

    expect((await substitute('tampered', otherKey)).status).not.toBe(0);
    expect(await statusOf(otherKey, closure.app)).toBe('untrusted');

    const lib = (await store.getNarInfo(closure.lib))!;
    const [name, b64] = lib.sigs[0]!.split(':') as [string, string];
    const sig = Buffer.from(b64, 'base64');
    sig[3] = sig[3]! ^ 0x40;
    const libKey = `${basename(closure.lib).slice(0, 32)}.narinfo`;
    const original = await collectBytes((await backend.get(libKey))!.body);
    await backend.put(
      libKey,
      new TextEncoder().encode(formatNarInfo({ ...lib, sigs: [`${name}:${sig.toString('base64')}`] })),
      {
        contentType: 'text/x-nix-narinfo',
      },
    );
    const refused = await substitute('tampered', pub, closure.lib);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/signature/);
    expect(await statusOf(pub, closure.lib)).toBe('untrusted');
    await backend.put(libKey, original, { contentType: 'text/x-nix-narinfo' });

    // Re-push app uncompressed so a content byte can be flipped in place.
    const plain = await openStore(`${s3ConfigFor(s3.endpoint, 'tampered').url}&compression=none`, {
      onWarning: () => {},
    });
    await pushPaths(plain, [closure.app], {
      storeDir: '/nix/store',
      secretKeys: [key],
      force: true,
      closure: false,
    });
    const app = (await plain.getNarInfo(closure.app))!;
    const nar = await collectBytes((await backend.get(app.url))!.body);
    const at = Buffer.from(nar).indexOf('#!/bin/sh') + 3;
    nar[at] = nar[at]! ^ 1;
    await backend.put(app.url, nar, { contentType: 'application/x-nix-nar' });
    const corrupt = await substitute('tampered', pub);
    expect(corrupt.status).not.toBe(0);
    expect(corrupt.stderr).toMatch(/hash mismatch/i);
    const report = (await verifyReports(store, { trustedKeys: [pub] })).reports.find(
      (r) => r.storePath === closure.app,
    )!;
    expect(report.status).toBe('corrupt');
  });

  it('copies a cache real Nix wrote into S3, and real Nix substitutes from the copy', async () => {
    nix(['nix', 'store', 'sign', '--key-file', keyFile, ...closure.metadata.keys()]);
    const dir = join(work, 'nix-written');
    nix(['nix', 'copy', '--to', `file://${dir}?compression=zstd&write-nar-listing=1`, closure.app]);
    const from = await openStore(`file://${dir}`);
    const to = await newCache('copied');
    const copied = await copyPaths(from, to, [closure.app], { trustedKeys: [pub] });
    expect(copied.failed).toEqual([]);
    const r = await substitute('copied', pub);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
  });
});
