/**
 * Caches written by nixcache are substituted by real Nix; caches written by real Nix are read,
 * verified and copied by nixcache. Nix and nixcache agree on what is bad.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyPaths, pushPaths } from '../../src/cache/index.js';
import { formatHash, formatNarInfo, parseHash, type SecretKey } from '../../src/index.js';
import { openStore } from '../../src/store/index.js';
import { describeWithNix } from '../helpers/env.js';
import { startHttpCache, type TestHttpServer } from '../helpers/http-server.js';
import {
  buildFixtureClosure,
  type FixtureClosure,
  nix,
  nixSigningKey,
  nixSubstitute,
} from '../helpers/nix.js';
import { verifyReports } from '../helpers/verify.js';

describeWithNix('real Nix and nixcache caches', () => {
  const work = mkdtempSync(join(tmpdir(), 'nixcache-interop-stores-'));
  const servers: TestHttpServer[] = [];
  let closure: FixtureClosure;
  let key: SecretKey;
  let keyFile: string;
  let pub: string;
  let fresh = 0;

  beforeAll(() => {
    closure = buildFixtureClosure();
    ({ keyFile, key, publicKey: pub } = nixSigningKey(work, 'interop'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(work, { recursive: true, force: true });
  });

  async function serve(dir: string): Promise<string> {
    const server = await startHttpCache(dir);
    servers.push(server);
    return server.url;
  }

  /** `nix copy --from <url>` into a fresh chroot store; returns the exit status and output. */
  function substitute(url: string, trustedKey: string, path = closure.app) {
    return nixSubstitute(url, join(work, `fresh-${fresh++}`), path, trustedKey);
  }

  async function pushClosure(url: string) {
    const store = await openStore(url, { onWarning: () => {} });
    // Only the deriver comes from Nix: references are found by scanning, as for a plain directory.
    const metadata = new Map(
      [...closure.metadata].map(([p, m]) => [p, m.deriver ? { deriver: m.deriver } : {}]),
    );
    const result = await pushPaths(store, [closure.app], {
      storeDir: '/nix/store',
      secretKeys: [key],
      metadata,
    });
    expect(result.failed).toEqual([]);
    return store;
  }

  it('pushes a closure with references, a deriver and a self-reference that real Nix substitutes', async () => {
    const dir = join(work, 'pushed');
    const store = await pushClosure(`file://${dir}`);
    for (const [path, meta] of closure.metadata) {
      const info = (await store.getNarInfo(path))!;
      expect(info.references.map((r) => `/nix/store/${r}`)).toEqual([...meta.references!].sort());
      expect(formatHash(info.narHash)).toBe(formatHash(parseHash(meta.narHash)));
      expect(info.narSize).toBe(meta.narSize);
      expect(info.deriver).toBe(meta.deriver ? basename(meta.deriver) : undefined);
      if (meta.ca) expect(info.ca).toBe(meta.ca);
    }
    expect((await store.getNarInfo(closure.app))!.references).toContain(basename(closure.app));
    const url = await serve(dir);
    const r = await substitute(url, pub);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    const copied = join(r.target, closure.app);
    expect(readFileSync(join(copied, 'self-reference'), 'utf8').trim()).toBe(closure.app);
  });

  it.each(['xz', 'zstd', 'bzip2', 'br', 'gzip', 'none'])(
    'real Nix substitutes over HTTP a cache whose NARs nixcache compressed with %s',
    async (compression) => {
      const dir = join(work, `pushed-${compression}`);
      const store = await pushClosure(`file://${dir}?compression=${compression}`);
      expect((await store.getNarInfo(closure.app))!.compression).toBe(compression);
      const r = await substitute(await serve(dir), pub);
      expect(r.stderr).not.toMatch(/error/);
      expect(r.status).toBe(0);
    },
  );

  it('is refused by real Nix and by verifyCache with a wrong key, a flipped signature byte or a flipped NAR byte', async () => {
    const dir = join(work, 'tampered');
    const store = await pushClosure(`file://${dir}?compression=none`);
    const url = await serve(dir);
    const otherKey = nix(
      ['nix', 'key', 'convert-secret-to-public'],
      nix(['nix', 'key', 'generate-secret', '--key-name', 'other-1']),
    );

    // A wrong trusted key: the input-addressed paths are refused, the CA one (dep) is not.
    expect((await substitute(url, otherKey)).status).not.toBe(0);
    const wrong = await verifyReports(store, { trustedKeys: [otherKey] });
    const statusOf = (r: typeof wrong, p: string) => r.reports.find((x) => x.storePath === p)?.status;
    expect(statusOf(wrong, closure.app)).toBe('untrusted');
    expect(statusOf(wrong, closure.lib)).toBe('untrusted');
    expect(statusOf(wrong, closure.dep)).toBe('ok');

    // A flipped signature byte on lib.
    const libKey = `${basename(closure.lib).slice(0, 32)}.narinfo`;
    const libText = await readFile(join(dir, libKey), 'utf8');
    const lib = (await store.getNarInfo(closure.lib))!;
    const [name, b64] = lib.sigs[0]!.split(':') as [string, string];
    const bytes = Buffer.from(b64, 'base64');
    bytes[7] = bytes[7]! ^ 0x10;
    await writeFile(
      join(dir, libKey),
      formatNarInfo({ ...lib, sigs: [`${name}:${bytes.toString('base64')}`] }),
    );
    const flippedSig = await substitute(url, pub, closure.lib);
    expect(flippedSig.status).not.toBe(0);
    expect(flippedSig.stderr).toMatch(/signature/);
    expect(statusOf(await verifyReports(store, { trustedKeys: [pub] }), closure.lib)).toBe('untrusted');
    await writeFile(join(dir, libKey), libText);

    // A flipped NAR byte in app.
    const app = (await store.getNarInfo(closure.app))!;
    const narPath = join(dir, app.url);
    const nar = await readFile(narPath);
    // A byte inside bin/app's contents, so the archive stays well-formed and only the hash differs.
    const at = nar.indexOf('#!/bin/sh') + 3;
    nar[at] = nar[at]! ^ 1;
    await writeFile(narPath, nar);
    const flippedNar = await substitute(url, pub);
    expect(flippedNar.status).not.toBe(0);
    expect(flippedNar.stderr).toMatch(/hash mismatch|NAR hash/i);
    const report = (await verifyReports(store, { trustedKeys: [pub] })).reports.find(
      (r) => r.storePath === closure.app,
    )!;
    expect(report.status).toBe('corrupt');
    expect(report.reason).toMatch(/mismatch/);
  });

  it.each(['xz', 'bzip2', 'zstd', 'br', 'gzip', 'none'])(
    'reads and verifies a cache real Nix wrote with compression=%s, and copies it to a cache Nix substitutes from',
    async (compression) => {
      nix(['nix', 'store', 'sign', '--key-file', keyFile, ...closure.metadata.keys()]);
      const dir = join(work, `nix-${compression}`);
      nix([
        'nix',
        'copy',
        '--to',
        `file://${dir}?compression=${compression}&write-nar-listing=1`,
        closure.app,
      ]);
      const from = await openStore(`file://${dir}`);
      const verified = await verifyReports(from, { trustedKeys: [pub] });
      expect(verified.summary).toMatchObject({ total: 3, ok: 3 });
      for (const p of closure.metadata.keys())
        expect(existsSync(join(dir, `${basename(p).slice(0, 32)}.ls`))).toBe(true);

      const copyDir = join(work, `copied-${compression}`);
      const to = await openStore(`file://${copyDir}?compression=xz`);
      const copied = await copyPaths(from, to, [closure.app], { trustedKeys: [pub] });
      expect(copied.failed).toEqual([]);
      expect(copied.pushed).toHaveLength(3);
      const r = await substitute(await serve(copyDir), pub);
      expect(r.stderr).not.toMatch(/error/);
      expect(r.status).toBe(0);
    },
  );
});
