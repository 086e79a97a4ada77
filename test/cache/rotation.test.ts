/**
 * Key rotation (issue 14 item 1) from the command line, against file:// and s3rver: sign --all
 * with the new key, trust the new public key, `sign --remove-key OLD`; afterwards real Nix trusting
 * only the new key substitutes the whole cache and `verify -k OLD` finds nothing trusted. Removal
 * refuses to leave a narinfo without a trusted signature unless --force, and a signer running at
 * the same time (another process on file://; an emulated lost race on s3rver, which ignores
 * If-Match) loses no signature.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCache } from '../../src/cache/init.js';
import { pushPaths } from '../../src/cache/push.js';
import { removeSignatures } from '../../src/cache/remove-signatures.js';
import { addSignatures } from '../../src/cache/sign.js';
import type { NarInfo } from '../../src/narinfo/types.js';
import { encodeNix32 } from '../../src/nix32.js';
import {
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  type SecretKey,
} from '../../src/signing/keys.js';
import { signNarInfo } from '../../src/signing/sign.js';
import { verifyNarInfo } from '../../src/signing/verify.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../cli/helpers.js';
import { hasNix } from '../helpers/env.js';
import { nixSubstitute } from '../helpers/nix.js';
import { faults, type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { s3Store } from '../reliability/helpers.js';
import { makeSourceStore, type SourceStore } from './helpers.js';

/** The summary of an NDJSON output (`sign --json`): its last line. */
function ndjsonSummary(stdout: string): {
  signed: number;
  unchanged: number;
  missing: number;
  failed: number;
} {
  return JSON.parse(stdout.trimEnd().split('\n').at(-1)!).summary;
}

const BUCKET = 'rotation';
let work: string;
let source: SourceStore;
let s3: S3rverHandle;
let proxy: LoopbackProxy;
const keys: Record<'old' | 'new' | 'other', { key: SecretKey; file: string; pub: string }> = {} as never;
const stores: BinaryCacheStore[] = [];
let fresh = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-rotation-'));
  source = await makeSourceStore(join(work, 'store'));
  for (const which of ['old', 'new', 'other'] as const) {
    const key = generateSecretKey(`rotation-${which}-1`);
    const file = join(work, `${which}.secret`);
    await writeFile(file, formatSecretKey(key), { mode: 0o600 });
    keys[which] = { key, file, pub: formatPublicKey(key.publicKey) };
  }
  s3 = await startS3rver({ buckets: [BUCKET] });
  Object.assign(process.env, s3ConfigFor(s3.endpoint, BUCKET).env);
  proxy = await startProxy({ target: s3.endpoint, maxRecordBytes: 4096 });
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await proxy?.close();
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

const allPaths = () => [source.data, source.lib, source.hello, source.note];

/** A cache holding every sample path signed by the old key only. */
async function seed(url: string): Promise<BinaryCacheStore> {
  const store = await openStore(url, { onWarning: () => {} });
  stores.push(store);
  await initCache(store, {});
  const r = await pushPaths(store, allPaths(), { storeDir: source.dir, secretKeys: [keys.old.key] });
  expect(r.failed).toEqual([]);
  return store;
}

interface VerifyReport {
  readonly status: string;
  readonly storePath: string;
  readonly signedBy: readonly string[];
}

/** The reports of `verify --json`, whether one document or NDJSON (one report a line). */
function verifyReports(stdout: string): VerifyReport[] {
  const docs = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { reports?: VerifyReport[]; status?: string });
  return docs.flatMap((d) => d.reports ?? (d.status !== undefined ? [d as VerifyReport] : []));
}

function signers(info: Parameters<typeof verifyNarInfo>[0]): string[] {
  return verifyNarInfo(info, [keys.old.pub, keys.new.pub, keys.other.pub]).signedBy.slice().sort();
}

interface Target {
  readonly url: string;
  readonly env: Readonly<Record<string, string>>;
  /** Where real Nix reads it (s3rver serves anonymous GETs). */
  readonly nixUrl: string;
}

const cases: readonly (readonly [string, (name: string) => Target])[] = [
  [
    'file://',
    (name) => {
      const url = `file://${join(work, name)}?compression=xz`;
      return { url, env: {}, nixUrl: url };
    },
  ],
  [
    's3rver',
    (name) => {
      const c = s3ConfigFor(s3.endpoint, BUCKET, name);
      return { url: c.url, env: c.env, nixUrl: `${s3.endpoint}/${BUCKET}/${name}` };
    },
  ],
];

describe.each(cases)('key rotation on %s', (_, config) => {
  it('sign --all NEW, then --remove-key OLD: Nix trusting only NEW substitutes everything, OLD trusts nothing', async () => {
    const { url, env, nixUrl } = config('rotate');
    const store = await seed(url);
    const run = (args: string[]) => runCli(args, { env });

    // Removing first would strip hello's only trusted signature: refused, unchanged.
    const early = await run([
      'sign',
      '--store',
      url,
      '--remove-key',
      'rotation-old-1',
      '-k',
      keys.new.pub,
      '--json',
      source.hello,
    ]);
    expect(early.code).toBe(1);
    // (only hello is input-addressed: the others are trusted on their CA claims alone.)
    expect(JSON.parse(early.stdout).refused.map((r: { path: string }) => r.path)).toEqual([source.hello]);
    for (const p of allPaths()) expect(signers((await store.getNarInfo(p))!)).toEqual(['rotation-old-1']);

    // 1. the new key's signature on everything
    const add = await run(['sign', '--store', url, '--key-file', keys.new.file, '--all', '--json']);
    expect(add.code).toBe(0);
    expect(ndjsonSummary(add.stdout).signed).toBe(4);
    // 2. (clients get the new public key) 3. the old key's signatures go
    const remove = await run([
      'sign',
      '--store',
      url,
      '--remove-key',
      'rotation-old-1',
      '-k',
      keys.new.pub,
      '--all',
      '--json',
    ]);
    expect(remove.stderr).toBe('');
    expect(remove.code).toBe(0);
    const out = JSON.parse(remove.stdout);
    expect(out.removed.sort()).toEqual(allPaths().sort());
    expect(out.refused).toEqual([]);
    for (const p of allPaths()) expect(signers((await store.getNarInfo(p))!)).toEqual(['rotation-new-1']);

    // Again: nothing left to remove.
    const again = await run([
      'sign',
      '--store',
      url,
      '--remove-key',
      'rotation-old-1',
      '-k',
      keys.new.pub,
      '--all',
      '--json',
    ]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).unchanged).toHaveLength(4);

    const old = await run(['verify', '--store', url, '-k', keys.old.pub, '--all', '--json']);
    expect(old.code).toBe(1);
    const oldReports = verifyReports(old.stdout);
    expect(oldReports).toHaveLength(4);
    // No signature by OLD is left: hello (input-addressed) is untrusted; the CA paths stay trusted
    // on their claims alone.
    for (const r of oldReports) expect(r.signedBy).toEqual([]);
    expect(
      oldReports
        .filter((r: { status: string }) => r.status === 'untrusted')
        .map((r: { storePath: string }) => r.storePath),
    ).toEqual([source.hello]);
    const now = await run(['verify', '--store', url, '-k', keys.new.pub, '--all', '--json']);
    expect(now.code).toBe(0);

    if (hasNix) {
      // hello's closure is data, lib and hello; note is the fourth path.
      for (const p of [source.hello, source.note]) {
        const r = await nixSubstitute(nixUrl, join(work, `fresh-${fresh++}`), p, keys.new.pub);
        expect(r.stderr).not.toMatch(/error/);
        expect(r.status).toBe(0);
      }
      const rejected = await nixSubstitute(
        nixUrl,
        join(work, `fresh-${fresh++}`),
        source.hello,
        keys.old.pub,
      );
      expect(rejected.status).not.toBe(0);
    }
  });

  it('--remove-key with --force strips the last trusted signature; without a trusted key it is a usage error', async () => {
    const { url: target, env } = config('force');
    const store = await seed(target);
    const usage = await runCli(['sign', '--store', target, '--remove-key', 'rotation-old-1', '--all'], {
      env,
    });
    expect(usage.code).toBe(2);
    const forced = await runCli(
      ['sign', '--store', target, '--remove-key', 'rotation-old-1', '--force', source.hello],
      { env },
    );
    expect(forced.code).toBe(0);
    expect((await store.getNarInfo(source.hello))!.sigs).toEqual([]);
    expect((await store.getNarInfo(source.lib))!.sigs).toHaveLength(1);
  });
});

describe('a signer running during --remove-key loses no signature', () => {
  it('on file://, two processes over the same 300 narinfos', async () => {
    const url = `file://${join(work, 'race')}?compression=none`;
    const store = await seed(url);
    // Enough narinfos that the two walks overlap: signed by old and new, no NARs needed.
    const paths = [...allPaths()];
    for (let i = 0; i < 296; i++) {
      const digest = randomBytes(32);
      const path = `/nix/store/${encodeNix32(randomBytes(20))}-synthetic-${i}`;
      const info: NarInfo = {
        storePath: path,
        url: `nar/${encodeNix32(digest)}.nar`,
        compression: 'none',
        narHash: { algorithm: 'sha256', digest },
        narSize: 1000 + i,
        references: [],
        sigs: [],
      };
      await store.putNarInfo(signNarInfo(info, keys.old.key));
      paths.push(path);
    }
    await addSignatures(store, 'all', [keys.new.key]);
    const [removing, signing] = await Promise.all([
      runCli([
        'sign',
        '--store',
        url,
        '--remove-key',
        'rotation-old-1',
        '-k',
        keys.new.pub,
        '--all',
        '--json',
      ]),
      runCli(['sign', '--store', url, '--key-file', keys.other.file, '--all', '--json']),
    ]);
    expect(removing.stderr).toBe('');
    expect(removing.code).toBe(0);
    expect(JSON.parse(removing.stdout).removed).toHaveLength(300);
    expect(signing.code).toBe(0);
    expect(ndjsonSummary(signing.stdout).signed).toBe(300);
    for (const p of paths)
      expect(signers((await store.getNarInfo(p))!), p).toEqual(['rotation-new-1', 'rotation-other-1']);
  });

  it('on S3, a 412 (the signer won the race) makes the remover re-read and keep the new signature', async () => {
    const direct = await seed(`${s3ConfigFor(s3.endpoint, BUCKET, 'race').url}&compression=none`);
    await addSignatures(direct, 'all', [keys.new.key]);
    const target = source.hello;
    const hash = target.slice(11, 43);
    const viaProxy = s3Store(proxy.endpoint, BUCKET, 'race', 'compression=none');
    stores.push(viaProxy);
    proxy.clear();
    let raced = false;
    proxy.onRequest = async (r) => {
      if (raced || r.method !== 'PUT' || !r.url.includes(`${hash}.narinfo`)) return undefined;
      raced = true;
      expect((await addSignatures(direct, [target], [keys.other.key])).signed).toBe(1);
      return faults.preconditionFailed;
    };
    try {
      const r = await removeSignatures(viaProxy, [target], ['rotation-old-1'], {
        trustedKeys: [keys.new.pub],
      });
      expect(r.failed).toEqual([]);
      expect(r.removed).toEqual([target]);
    } finally {
      proxy.onRequest = undefined;
    }
    const requests = proxy.requests
      .filter((q) => q.url.includes(`${hash}.narinfo`))
      .map((q) => `${q.method} ${q.status ?? '-'}`);
    expect(requests).toEqual(['GET 200', 'PUT 412', 'GET 200', 'PUT 200']);
    expect(signers((await direct.getNarInfo(target))!)).toEqual(['rotation-new-1', 'rotation-other-1']);
  });
});
