/**
 * One conformance suite for every store backend: the same cache behaviour whether the bytes live
 * in a directory, behind HTTP or in S3. Each backend's test file calls `storeConformance`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { copyPaths, initCache, pushPaths } from '../../src/cache/index.js';
import type { PathReport } from '../../src/cache/verify.js';
import {
  formatNarInfo,
  formatPublicKey,
  generateSecretKey,
  NixcacheError,
  parseNarInfo,
  type SecretKey,
} from '../../src/index.js';
import { collectBytes } from '../../src/internal/iter.js';
import { type BinaryCacheStore, openStore, type StorageBackend } from '../../src/store/index.js';
import { signLists } from '../helpers/sign.js';
import { verifyReports } from '../helpers/verify.js';

export interface ConformanceTarget {
  /** A URL for a fresh, empty cache each time it is called. */
  freshUrl(): Promise<string>;
  /** Whether the backend can list narinfos (plain HTTP cannot). */
  readonly canList: boolean;
  /** Corrupts one byte of a stored object in place (to test verification). */
  corrupt(url: string, key: string): Promise<void>;
  /** Removes a stored object behind the store's back. */
  remove(url: string, key: string): Promise<void>;
  readonly openOptions?: Parameters<typeof openStore>[1];
}

/** Flips one byte in the middle of a stored object through its backend (for `corrupt`). */
export async function corruptObject(backend: StorageBackend, key: string): Promise<void> {
  const bytes = await collectBytes((await backend.get(key))!.body);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
  await backend.put(key, bytes, { contentType: 'application/x-nix-nar' });
}

/** Adds a query parameter to a store URL that may already have some. */
function withParam(url: string, key: string, value: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${key}=${value}`;
}

export function storeConformance(name: string, target: () => ConformanceTarget): void {
  describe(`${name} store conformance`, () => {
    let sample: SampleStore;
    let scratch: string;
    let key: SecretKey;
    let pub: string;
    let t: ConformanceTarget;
    const open = async (url?: string): Promise<{ store: BinaryCacheStore; url: string }> => {
      const u = url ?? (await t.freshUrl());
      return { store: await openStore(u, { onWarning: () => {}, ...t.openOptions }), url: u };
    };

    beforeAll(async () => {
      t = target();
      scratch = await mkdtemp(join(tmpdir(), 'nixcache-conformance-'));
      await import('node:fs/promises').then((fs) => fs.mkdir(join(scratch, 'store')));
      sample = await makeSampleStore(join(scratch, 'store'));
      key = generateSecretKey('conformance-1');
      pub = formatPublicKey(key.publicKey);
    });
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
    });

    it('reads back what it writes, with absence as undefined', async () => {
      const { store } = await open();
      expect(await store.getFile('nix-cache-info')).toBeUndefined();
      expect(await store.hasFile('nix-cache-info')).toBe(false);
      expect(await store.getNarInfo('00bgd045z0d4icpbc2yyz4gx48ak44la')).toBeUndefined();
      expect(await store.hasNarInfo('00bgd045z0d4icpbc2yyz4gx48ak44la')).toBe(false);
      const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
      await store.putFile('nar/test.nar', bytes);
      expect(await store.hasFile('nar/test.nar')).toBe(true);
      expect(await store.getFile('nar/test.nar')).toEqual(bytes);
      expect(await collectBytes((await store.getFileStream('nar/test.nar'))!)).toEqual(bytes);
      await store.close();
    });

    it('initialises the cache and reads nix-cache-info back', async () => {
      const { store } = await open();
      await initCache(store, { priority: 41, wantMassQuery: true });
      expect(await store.getCacheInfo()).toEqual({
        storeDir: '/nix/store',
        wantMassQuery: true,
        priority: 41,
      });
      expect(new TextDecoder().decode(await store.getFile('nix-cache-info'))).toBe(
        'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n',
      );
    });

    it('pushes a closure references first, verifies it, and skips it the second time', async () => {
      const { store } = await open();
      const events: string[] = [];
      const result = await pushPaths(store, [sample.hello], {
        storeDir: sample.dir,
        secretKeys: [key],
        onProgress: (e) => events.push(`${e.type}`),
      });
      expect(result.failed).toEqual([]);
      expect(result.pushed).toEqual([sample.data, sample.lib, sample.hello]);
      const hello = (await store.getNarInfo(sample.hello))!;
      expect(hello.references).toEqual([sample.lib.slice(11)]);
      expect(hello.ca).toBeUndefined();
      expect((await store.getNarInfo(sample.lib))!.ca).toMatch(/^fixed:r:sha256:/);
      expect(hello.compression).toBe('xz');
      expect(hello.url).toMatch(/^nar\/[0-9a-z]{52}\.nar\.xz$/);
      expect(events).toContain('staged');
      const verified = await verifyReports(store, {
        trustedKeys: [pub],
        paths: [sample.hello, sample.lib, sample.data],
      });
      expect(verified.reports.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
      expect(verified.ok).toBe(true);
      const again = await pushPaths(store, [sample.hello], { storeDir: sample.dir, secretKeys: [key] });
      expect(again.pushed).toEqual([]);
      expect(again.skipped).toEqual([sample.hello]);
      if (t.canList) {
        const listed = [];
        for await (const h of store.listNarInfos()) listed.push(h);
        expect(listed.sort()).toEqual(
          [sample.data, sample.lib, sample.hello].map((p) => p.slice(11, 43)).sort(),
        );
      } else {
        await expect(async () => {
          for await (const _ of store.listNarInfos());
        }).rejects.toThrow(/cannot be listed/);
      }
    });

    it('streams NARs verified, and reports corruption, missing NARs and bad signatures', async () => {
      const { store, url } = await open(withParam(await t.freshUrl(), 'compression', 'none'));
      await pushPaths(store, [sample.hello], { storeDir: sample.dir, secretKeys: [key] });
      const lib = (await store.getNarInfo(sample.lib))!;
      const nar = await collectBytes(store.getNar(lib));
      expect(nar.length).toBe(lib.narSize);

      await t.corrupt(url, lib.url);
      await expect(collectBytes(store.getNar(lib))).rejects.toThrow(/mismatch/);
      const data = (await store.getNarInfo(sample.data))!;
      await t.remove(url, data.url);
      await expect(collectBytes(store.getNar(data))).rejects.toThrow(/missing/);
      const hello = (await store.getNarInfo(sample.hello))!;
      // Without its CA claim (which alone would make it trusted), with a flipped signature byte.
      const { ca: _ca, ...unclaimed } = hello;
      const flipped = hello.sigs.map((sig) => {
        const [name, b64] = sig.split(':') as [string, string];
        const bytes = Buffer.from(b64, 'base64');
        bytes[10] = bytes[10]! ^ 1;
        return `${name}:${bytes.toString('base64')}`;
      });
      await store.putNarInfo({ ...unclaimed, sigs: flipped });

      const result = await verifyReports(store, {
        trustedKeys: [pub],
        paths: [sample.hello, sample.lib, sample.data, `${'0'.repeat(32)}`],
      });
      const byPath = Object.fromEntries(result.reports.map((r) => [r.storePath ?? r.hashPart, r]));
      expect(byPath[sample.lib]!.status).toBe('corrupt');
      expect(byPath[sample.lib]!.reason).toMatch(/FileHash mismatch|NarHash mismatch|NarSize mismatch/);
      expect(byPath[sample.data]!.status).toBe('missing-nar');
      expect(byPath[sample.hello]!.status).toBe('untrusted');
      expect(byPath['0'.repeat(32)]!.status).toBe('missing');
      expect(result.ok).toBe(false);
      expect(result.summary).toMatchObject({
        total: 4,
        ok: 0,
        corrupt: 1,
        'missing-nar': 1,
        untrusted: 1,
        missing: 1,
      });

      // Worker threads open the store again from its URL and reach the same verdicts, with and
      // without contents.
      const sorted = (reports: readonly PathReport[]) =>
        [...reports].sort((a, b) => a.hashPart.localeCompare(b.hashPart));
      for (const contents of [true, false]) {
        const options = {
          trustedKeys: [pub],
          contents,
          paths: [sample.hello, sample.lib, sample.data, `${'0'.repeat(32)}`],
        };
        const inThread = await verifyReports(store, options);
        const onWorkers = await verifyReports(store, { ...options, workers: 2 });
        expect(sorted(onWorkers.reports)).toEqual(sorted(inThread.reports));
        expect(onWorkers.summary).toEqual(inThread.summary);
      }
    });

    it('rejects narinfos whose URL leaves the cache, and whose StorePath is not the one asked for', async () => {
      const { store } = await open();
      await pushPaths(store, [sample.data], { storeDir: sample.dir, secretKeys: [key] });
      const info = (await store.getNarInfo(sample.data))!;
      for (const url of ['../../etc/passwd', '/etc/passwd', 'http://evil.example/x.nar', 'nar/../../x']) {
        await expect(collectBytes(store.getNar({ ...info, url }))).rejects.toThrow(NixcacheError);
      }
      const text = formatNarInfo({ ...parseNarInfo(formatNarInfo(info)), storePath: sample.lib });
      await store.putFile(`${sample.data.slice(11, 43)}.narinfo`, new TextEncoder().encode(text));
      await expect(store.getNarInfo(sample.data)).rejects.toThrow(/not the path asked for/);
    });

    it('copies a closure to another cache, re-signing, and adds signatures without losing any', async () => {
      const { store: from } = await open();
      await pushPaths(from, [sample.hello], { storeDir: sample.dir, secretKeys: [key] });
      const { store: to } = await open(withParam(await t.freshUrl(), 'compression', 'zstd'));
      const other = generateSecretKey('copy-1');
      const copied = await copyPaths(from, to, [sample.hello], { trustedKeys: [pub], secretKeys: [other] });
      expect(copied.failed).toEqual([]);
      expect(copied.pushed).toEqual([sample.data, sample.lib, sample.hello]);
      const info = (await to.getNarInfo(sample.hello))!;
      expect(info.compression).toBe('zstd');
      expect(info.sigs).toHaveLength(2);
      expect(
        (await verifyReports(to, { trustedKeys: [formatPublicKey(other.publicKey)], paths: [sample.hello] }))
          .ok,
      ).toBe(true);

      const third = generateSecretKey('third-1');
      const signed = await signLists(to, [sample.hello, sample.lib], [third]);
      expect(signed.signed).toHaveLength(2);
      expect((await to.getNarInfo(sample.hello))!.sigs).toHaveLength(3);
      const again = await signLists(to, [sample.hello], [third]);
      expect(again.unchanged).toEqual([sample.hello]);
    });
  });
}
