/**
 * A CA claim makes a path trusted only when the data it covers was checked: copy, verify, sign
 * and push refuse a path whose NAR was swapped under its `CA:` line (issue 10 item 1).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyPaths, pushPaths } from '../../src/cache/index.js';
import type { NixcacheError } from '../../src/errors.js';
import { formatHash } from '../../src/hash/hash.js';
import { formatPublicKey, generateSecretKey, signNarInfo, verifyNarInfo } from '../../src/index.js';
import { openStore } from '../../src/store/index.js';
import { signLists } from '../helpers/sign.js';
import { verifyReports } from '../helpers/verify.js';
import {
  hashPartOf,
  makeSourceStore,
  pushUnsigned,
  readNarInfoFile,
  type SourceStore,
  swapNar,
  writeNarInfoFile,
} from './helpers.js';

let work: string;
let source: SourceStore;
let fresh = 0;
const key = generateSecretKey('target-1');
const pub = formatPublicKey(key.publicKey);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-ca-'));
  source = await makeSourceStore(join(work, 'store'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh source cache with data and note pushed unsigned; `tamper` forges some of them. */
async function sourceCache(tamper: (dir: string) => Promise<unknown> = async () => {}) {
  const dir = join(work, `source-${fresh++}`);
  const url = await pushUnsigned(source, dir, [source.data, source.note, source.lib]);
  await tamper(dir);
  return { dir, store: await openStore(url) };
}

async function target() {
  const dir = join(work, `target-${fresh++}`);
  return { dir, store: await openStore(`file://${dir}?compression=zstd`) };
}

function failure(result: { failed: readonly { path: string; error: Error }[] }, path: string) {
  const f = result.failed.find((x) => x.path === path);
  expect(f, `${path} should have failed`).toBeDefined();
  return f!.error as NixcacheError;
}

describe('a swapped NAR under a fixed:r:sha256 claim', () => {
  it('is contradicted by the narinfo alone: untrusted by verifyNarInfo and verifyCache, even re-signed', async () => {
    const { dir, store } = await sourceCache((d) => swapNar(d, source.data, 'not the greeting\n'));
    const forged = await readNarInfoFile(dir, source.data);
    expect(forged.ca).toMatch(/^fixed:r:sha256:/);
    const v = verifyNarInfo(forged, [pub]);
    expect(v.trusted).toBe(false);
    expect(v.contentAddressProblem).toMatch(/^CA hash sha256:\w+ does not match NarHash sha256:\w+$/);
    // A signature by a trusted key cannot repair it: Nix refuses it on import whoever signed it.
    expect(verifyNarInfo(signNarInfo(forged, key), [pub]).trusted).toBe(false);

    for (const contents of [false, true]) {
      const { reports } = await verifyReports(store, { trustedKeys: [pub], contents, paths: [source.data] });
      expect(reports[0]!.status, `contents: ${contents}`).toBe('corrupt');
      expect(reports[0]!.reason).toMatch(/CA hash .* does not match NarHash/);
    }
    // Re-signed by the trusted key (as copy used to do), it is still corrupt.
    await writeNarInfoFile(dir, signNarInfo(forged, key));
    const resigned = await verifyReports(store, {
      trustedKeys: [pub],
      contents: false,
      paths: [source.data],
    });
    expect(resigned.reports[0]).toMatchObject({ status: 'corrupt', signedBy: ['target-1'] });
  });

  it('is refused by copy before anything is uploaded, with or without keys', async () => {
    const { store: from } = await sourceCache((d) => swapNar(d, source.data, 'not the greeting\n'));
    for (const options of [{ trustedKeys: [pub], secretKeys: [key] }, { trustedKeys: [pub] }, {}]) {
      const to = await target();
      const result = await copyPaths(from, to.store, [source.data], options);
      expect(result.pushed).toEqual([]);
      const e = failure(result, source.data);
      expect(e.code).toBe('INTEGRITY');
      expect(e.data).toMatchObject({ path: source.data, field: 'CA' });
      expect(e.message).toContain(source.data);
      expect(existsSync(join(to.dir, `${hashPartOf(source.data)}.narinfo`))).toBe(false);
      expect(existsSync(join(to.dir, 'nar')) ? await readdir(join(to.dir, 'nar')) : []).toEqual([]);
    }
  });

  it('is not signed by addSignatures', async () => {
    const { dir, store } = await sourceCache((d) => swapNar(d, source.data, 'not the greeting\n'));
    const result = await signLists(store, [source.data, source.lib], [key]);
    expect(result.signed).toEqual([source.lib]);
    expect(result.failed.map((f) => [f.path, (f.error as NixcacheError).code])).toEqual([
      [source.data, 'INTEGRITY'],
    ]);
    expect((await readNarInfoFile(dir, source.data)).sigs).toEqual([]);
  });
});

describe('a text claim', () => {
  it('is only provisional from the narinfo: verify --no-contents leaves it untrusted, contents make it ok', async () => {
    const { dir, store } = await sourceCache();
    const info = await readNarInfoFile(dir, source.note);
    expect(info.ca).toMatch(/^text:sha256:/);
    expect(verifyNarInfo(info, [pub])).toMatchObject({ trusted: false, contentAddressNeedsContents: true });
    const quick = await verifyReports(store, { trustedKeys: [pub], contents: false, paths: [source.note] });
    expect(quick.reports[0]).toMatchObject({
      status: 'untrusted',
      reason: expect.stringMatching(/--no-contents/),
    });
    const full = await verifyReports(store, { trustedKeys: [pub], paths: [source.note] });
    expect(full.reports[0]!.status).toBe('ok');
  });

  it('is copied and re-signed once the contents proved it', async () => {
    const { store: from } = await sourceCache();
    const to = await target();
    const result = await copyPaths(from, to.store, [source.note], { trustedKeys: [pub], secretKeys: [key] });
    expect(result.failed).toEqual([]);
    expect(result.pushed).toEqual([source.note]);
    expect(verifyNarInfo((await to.store.getNarInfo(source.note))!, [pub]).signedBy).toEqual(['target-1']);
  });

  it('over a swapped NAR is refused by copy (CA hash mismatch) and reported corrupt by verify', async () => {
    const { dir, store: from } = await sourceCache((d) => swapNar(d, source.note, 'a forged note\n'));
    const forged = await readNarInfoFile(dir, source.note);
    expect(verifyNarInfo(forged, [pub]).trusted).toBe(false);
    for (const options of [{ trustedKeys: [pub], secretKeys: [key] }, {}]) {
      const to = await target();
      const result = await copyPaths(from, to.store, [source.note], options);
      const e = failure(result, source.note);
      expect(e.code).toBe('INTEGRITY');
      expect(e.message).toMatch(/CA hash mismatch/);
      expect(e.data).toMatchObject({ path: source.note, field: 'CA' });
      expect(existsSync(join(to.dir, `${hashPartOf(source.note)}.narinfo`))).toBe(false);
      expect(existsSync(join(to.dir, 'nar')) ? await readdir(join(to.dir, 'nar')) : []).toEqual([]);
    }
    const { reports } = await verifyReports(from, { trustedKeys: [pub], paths: [source.note] });
    expect(reports[0]).toMatchObject({
      status: 'corrupt',
      reason: expect.stringMatching(/CA hash mismatch/),
    });
  });

  it('signed by a trusted key but over a swapped NAR is still refused by copy', async () => {
    const { store: from } = await sourceCache(async (d) => {
      await writeNarInfoFile(d, signNarInfo(await swapNar(d, source.note, 'a forged note\n'), key));
    });
    const result = await copyPaths(from, (await target()).store, [source.note], { trustedKeys: [pub] });
    expect(failure(result, source.note).message).toMatch(/CA hash mismatch/);
  });
});

describe('signing keys without a trusted signature', () => {
  it('copy re-signs only what a trusted key signed or a checked CA claim proves', async () => {
    const dir = join(work, `source-${fresh++}`);
    await pushUnsigned(source, dir, [source.hello]);
    const to = await target();
    const result = await copyPaths(await openStore(`file://${dir}`), to.store, [source.hello], {
      secretKeys: [key],
    });
    // hello is input-addressed and unsigned: nothing proves it.
    expect(result.pushed).not.toContain(source.hello);
    const e = failure(result, source.hello);
    expect(e.code).toBe('INTEGRITY');
    expect(e.message).toMatch(/not signed by a trusted key, so it is not re-signed/);
    expect(existsSync(join(to.dir, `${hashPartOf(source.hello)}.narinfo`))).toBe(false);
    // Signed by the same key that re-signs: trusted, as Nix trusts the keys it signs with.
    const signedDir = join(work, `source-${fresh++}`);
    const signed = await openStore(`file://${signedDir}`);
    expect(
      (await pushPaths(signed, [source.hello], { storeDir: source.dir, secretKeys: [key] })).failed,
    ).toEqual([]);
    const again = await copyPaths(signed, (await target()).store, [source.hello], { secretKeys: [key] });
    expect(again.failed).toEqual([]);
  });
});

describe('push --metadata', () => {
  it('refuses a CA claim that the contents do not prove', async () => {
    const dir = join(work, `push-${fresh++}`);
    const store = await openStore(`file://${dir}`);
    const wrong = `text:${formatHash({ algorithm: 'sha256', digest: new Uint8Array(32).fill(1) })}`;
    const result = await pushPaths(store, [source.note], {
      storeDir: source.dir,
      secretKeys: [key],
      metadata: { [source.note]: { references: [], ca: wrong } },
    });
    const e = failure(result, source.note);
    expect(e.code).toBe('INTEGRITY');
    expect(e.data).toMatchObject({ path: source.note, field: 'CA' });
    expect(existsSync(join(dir, `${hashPartOf(source.note)}.narinfo`))).toBe(false);
  });
});
