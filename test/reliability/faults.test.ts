/**
 * Fault injection (issue 7 "Fault injection", issue 5 "Fault tests"): a recording loopback proxy in
 * front of s3rver resets connections, delays, answers 500/503 SlowDown and truncates bodies, on a
 * seeded random schedule. Push must retry and either complete or fail cleanly with nothing
 * dangling (checked by the invariant checker over every narinfo in the bucket), and a rerun
 * without faults must complete. The S3 server killed halfway through a push leaves no narinfo
 * without its NAR. verifyCache tells a network error from corruption and never accepts a
 * truncated NAR. Bad credentials, missing credentials and unreachable endpoints name the URL and
 * the operation.
 *
 * NIXCACHE_FAULT_SEED picks the schedules' seed (default fixed); NIXCACHE_FAULT_SCHEDULES their number.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushPaths } from '../../src/cache/push.js';
import { verifyCache } from '../../src/cache/verify.js';
import { NixcacheError } from '../../src/errors.js';
import { generateSecretKey, type SecretKey } from '../../src/signing/keys.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { narUrlToKey } from '../../src/store/layout.js';
import { S3Backend } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import {
  type Fault,
  faults,
  type LoopbackProxy,
  type RecordedRequest,
  startProxy,
} from '../helpers/proxy.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { verifyReports } from '../helpers/verify.js';
import { type BigSampleStore, checkInvariant, makeBigSampleStore, PUSH_PARAMS, s3Store } from './helpers.js';

const BUCKET = 'faults';
const SEED = Number(process.env.NIXCACHE_FAULT_SEED ?? 20240607);
const SCHEDULES = Number(process.env.NIXCACHE_FAULT_SCHEDULES ?? 4);

let s3: S3rverHandle;
let proxy: LoopbackProxy;
let tmp: string;
let sample: BigSampleStore;
let key: SecretKey;
const stores: BinaryCacheStore[] = [];
const warnings: string[] = [];

function open(endpoint: string, prefix: string, params = PUSH_PARAMS): BinaryCacheStore {
  const store = s3Store(endpoint, BUCKET, prefix, params, { warnings });
  stores.push(store);
  return store;
}

/** xorshift32: a reproducible schedule from a seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** A fault for roughly `rate` of the requests, of every kind the proxy has. */
function randomFaults(random: () => number, rate: number): (r: RecordedRequest) => Fault | undefined {
  return (r) => {
    if (random() >= rate) return undefined;
    const pick = random();
    if (pick < 0.2) return faults.reset;
    if (pick < 0.4) return faults.internalError;
    if (pick < 0.6) return faults.slowDown;
    if (pick < 0.7) return { kind: 'delay', ms: 50 + Math.floor(random() * 200) };
    if (pick < 0.85 && r.method === 'PUT')
      return { kind: 'resetAfterRequestBytes', bytes: 1 + Math.floor(random() * 4 * 1024 * 1024) };
    if (r.method === 'GET') return { kind: 'truncate', afterBytes: Math.floor(random() * 1000) };
    return { kind: 'delay', ms: 20, next: faults.slowDown };
  };
}

function expectClean(report: Awaited<ReturnType<typeof checkInvariant>>): void {
  expect(report.problems).toEqual([]);
}

async function allOk(store: BinaryCacheStore): Promise<void> {
  const result = await verifyReports(store, { trustedKeys: [key.publicKey] });
  expect(result.reports.filter((r) => r.status !== 'ok')).toEqual([]);
  expect(result.summary.total).toBe(4);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-faults-'));
  sample = await makeBigSampleStore(tmp, 12);
  key = generateSecretKey('faults-test-1');
  s3 = await startS3rver({ buckets: [BUCKET] });
  proxy = await startProxy({ target: s3.endpoint, maxRecordBytes: 256 });
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await proxy?.close();
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const roots = () => [sample.hello, sample.big];

describe('push under injected faults', () => {
  it(`completes or fails cleanly under ${SCHEDULES} random fault schedules (seed ${SEED}); a rerun completes`, async () => {
    const random = rng(SEED);
    for (let i = 0; i < SCHEDULES; i++) {
      const prefix = `schedule-${i}`;
      const rate = [0.1, 0.2, 0.3, 0.45][i % 4]!;
      proxy.onRequest = randomFaults(random, rate);
      const faulty = open(proxy.endpoint, prefix);
      const first = await pushPaths(faulty, roots(), { storeDir: sample.dir, secretKeys: [key] });
      proxy.onRequest = undefined;
      const injected = proxy.requests.filter((r) => r.fault).length;
      proxy.clear();
      const direct = open(s3.endpoint, prefix);
      // Whatever happened, nothing dangles.
      const after = await checkInvariant(direct);
      expectClean(after);
      expect(after.narinfos).toBe(first.pushed.length);
      expect(injected).toBeGreaterThan(0);
      // A rerun without faults completes and the cache verifies.
      const rerun = await pushPaths(direct, roots(), { storeDir: sample.dir, secretKeys: [key] });
      expect(rerun.failed).toEqual([]);
      expect(rerun.pushed.length + first.pushed.length).toBe(4);
      expectClean(await checkInvariant(direct));
      await allOk(direct);
    }
  }, 120_000);

  it('fails cleanly when every request after the first NAR upload fails, and a rerun completes', async () => {
    const prefix = 'storm';
    let narPuts = 0;
    proxy.onRequest = (r) => {
      if (narPuts > 0) return r.index % 2 ? faults.reset : faults.slowDown;
      if (r.method === 'PUT' && r.url.includes('/nar/')) narPuts++;
      return undefined;
    };
    const faulty = open(proxy.endpoint, prefix);
    const first = await pushPaths(faulty, roots(), { storeDir: sample.dir, secretKeys: [key] });
    proxy.onRequest = undefined;
    proxy.clear();
    expect(first.failed.length).toBeGreaterThan(0);
    for (const f of first.failed) {
      expect(f.error).toBeInstanceOf(NixcacheError);
      expect((f.error as NixcacheError).code).toMatch(/NETWORK|NOT_FOUND/);
    }
    const direct = open(s3.endpoint, prefix);
    expectClean(await checkInvariant(direct));
    const rerun = await pushPaths(direct, roots(), { storeDir: sample.dir, secretKeys: [key] });
    expect(rerun.failed).toEqual([]);
    await allOk(direct);
  }, 60_000);

  it('a NAR left half-written by an earlier upload is replaced, not trusted, by the next push', async () => {
    // s3rver keeps the partial body of a streamed PutObject cut short (AWS refuses it), and a
    // server killed mid-write can leave one: the object under the NAR's key is then shorter than
    // FileSize. The next push must not take it for the finished NAR.
    const prefix = 'partial';
    const params = 'compression=none&multipart-upload=false';
    const direct = open(s3.endpoint, prefix, params);
    const first = await pushPaths(direct, [sample.big], { storeDir: sample.dir, secretKeys: [key] });
    expect(first.failed).toEqual([]);
    const info = (await direct.getNarInfo(sample.big))!;
    const narKey = narUrlToKey(info.url).key;
    const whole = await direct.backend.get(narKey);
    const head: Uint8Array[] = [];
    for await (const c of whole!.body) {
      head.push(c);
      if (head.reduce((n, x) => n + x.length, 0) >= 1024 * 1024) break;
    }
    // The state an interrupted first push leaves: part of the NAR, no narinfo.
    await direct.backend.put(narKey, new Uint8Array(Buffer.concat(head)), {
      contentType: 'application/x-nix-nar',
    });
    await direct.backend.delete(`${info.storePath.slice(11, 43)}.narinfo`);
    const rerun = await pushPaths(direct, [sample.big], { storeDir: sample.dir, secretKeys: [key] });
    expect(rerun.failed).toEqual([]);
    expectClean(await checkInvariant(direct));
    const result = await verifyReports(direct, { trustedKeys: [key.publicKey] });
    expect(result.reports.map((r) => r.status)).toEqual(['ok', 'ok']);
  }, 60_000);

  it('s3rver killed halfway through a push leaves no narinfo without its NAR; after a restart a rerun completes', async () => {
    const prefix = 'killed';
    let narinfoPuts = 0;
    proxy.onRequest = (r) => {
      // Kill the server once the first narinfo is written: NARs of the others are in flight.
      if (r.method === 'PUT' && /\.narinfo(\?|$)/.test(r.url) && ++narinfoPuts === 2) s3.kill();
      return undefined;
    };
    const faulty = open(proxy.endpoint, prefix);
    const first = await pushPaths(faulty, roots(), {
      storeDir: sample.dir,
      secretKeys: [key],
      parallelism: 3,
    });
    proxy.onRequest = undefined;
    expect(first.failed.length).toBeGreaterThan(0);
    expect(first.pushed.length).toBeLessThan(4);
    for (const f of first.failed)
      expect(f.error.message).toMatch(/s3:\/\/faults\/killed|could not be published/);
    await s3.restart();
    const direct = open(s3.endpoint, prefix);
    expectClean(await checkInvariant(direct));
    const rerun = await pushPaths(direct, roots(), { storeDir: sample.dir, secretKeys: [key] });
    expect(rerun.failed).toEqual([]);
    expectClean(await checkInvariant(direct));
    await allOk(direct);
  }, 60_000);
});

describe('verifyCache under faults', () => {
  const prefix = 'verify';
  let direct: BinaryCacheStore;
  let bigNar: string;

  beforeAll(async () => {
    direct = open(s3.endpoint, prefix);
    const r = await pushPaths(direct, roots(), { storeDir: sample.dir, secretKeys: [key] });
    expect(r.failed).toEqual([]);
    const info = await direct.getNarInfo(sample.big);
    bigNar = narUrlToKey(info!.url).key;
  });

  it('a NAR download that keeps failing (503, resets) is an error, not corrupt', async () => {
    proxy.onRequest = (r) =>
      r.method === 'GET' && r.url.includes(bigNar)
        ? r.index % 2
          ? faults.slowDown
          : faults.reset
        : undefined;
    try {
      const result = await verifyReports(open(proxy.endpoint, prefix), { trustedKeys: [key.publicKey] });
      const big = result.reports.find((r) => r.storePath === sample.big)!;
      expect(big.status).toBe('error');
      expect(big.reason).toContain(`s3://${BUCKET}/${prefix}/${bigNar}`);
      expect(result.summary.ok).toBe(3);
      expect(result.summary.corrupt).toBe(0);
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('a narinfo that cannot be fetched is an error, not missing', async () => {
    proxy.onRequest = (r) =>
      r.method === 'GET' && /\.narinfo(\?|$)/.test(r.url) ? faults.internalError : undefined;
    try {
      const result = await verifyReports(open(proxy.endpoint, prefix), {
        trustedKeys: [key.publicKey],
        contents: false,
      });
      expect(result.summary.error).toBe(4);
      expect(result.summary.missing).toBe(0);
      for (const r of result.reports) expect(r.reason).toMatch(/GetObject failed: HTTP 500/);
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('a truncated NAR download is never accepted, at any cut point', async () => {
    for (const afterBytes of [1, 4096, 1024 * 1024, 8 * 1024 * 1024]) {
      proxy.onRequest = (r) =>
        r.method === 'GET' && r.url.includes('/nar/') ? { kind: 'truncate', afterBytes } : undefined;
      try {
        const result = await verifyReports(open(proxy.endpoint, prefix), { trustedKeys: [key.publicKey] });
        let cut = 0;
        for (const r of result.reports) {
          const info = (await direct.getNarInfo(r.storePath!))!;
          if (info.fileSize! <= afterBytes) continue; // the whole file got through
          cut++;
          expect(r.status, `cut after ${afterBytes}: ${r.storePath}`).not.toBe('ok');
          expect(['error', 'corrupt']).toContain(r.status);
        }
        expect(cut).toBeGreaterThan(0);
      } finally {
        proxy.onRequest = undefined;
      }
    }
  });

  it('a server that stalls a download fails it after the idle timeout (an error, never a hang)', async () => {
    // Headers and a little of the body, then silence: the proxy's delay holds the response back;
    // a 60 s stall against a 1 s idle limit.
    proxy.onRequest = (r) =>
      r.method === 'GET' && r.url.includes(bigNar) ? { kind: 'delay', ms: 60_000 } : undefined;
    const store = s3Store(proxy.endpoint, BUCKET, prefix, PUSH_PARAMS, {
      idleTimeoutMs: 1000,
      maxAttempts: 1,
    });
    stores.push(store);
    const started = Date.now();
    try {
      const result = await verifyReports(store, { trustedKeys: [key.publicKey], paths: [sample.big] });
      expect(result.reports[0]!.status).toBe('error');
      expect(result.reports[0]!.reason).toMatch(/GetObject failed.*(timed out|inactivity)/);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      proxy.onRequest = undefined;
    }
  }, 30_000);

  it('a NAR whose stored bytes changed is corrupt (and the check names the mismatch)', async () => {
    const info = (await direct.getNarInfo(sample.lib))!;
    const narKeyOfLib = narUrlToKey(info.url).key;
    const object = await direct.backend.get(narKeyOfLib);
    const chunks: Uint8Array[] = [];
    for await (const c of object!.body) chunks.push(c);
    const bytes = new Uint8Array(Buffer.concat(chunks));
    const flipped = bytes.slice();
    flipped[bytes.length >> 1] = flipped[bytes.length >> 1]! ^ 0x40;
    await direct.backend.put(narKeyOfLib, flipped, { contentType: 'application/x-nix-nar' });
    try {
      const result = await verifyReports(direct, { trustedKeys: [key.publicKey], paths: [sample.lib] });
      expect(result.reports[0]!.status).toBe('corrupt');
      expect(result.reports[0]!.reason).toMatch(/FileHash mismatch|COMPRESSION|zstd/i);
    } finally {
      await direct.backend.put(narKeyOfLib, bytes, { contentType: 'application/x-nix-nar' });
    }
  });
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('clear errors for bad credentials and endpoints', () => {
  async function pushError(store: BinaryCacheStore): Promise<NixcacheError> {
    try {
      const r = await pushPaths(store, [sample.data], { storeDir: sample.dir });
      throw new Error(`expected the push to fail, got ${JSON.stringify(r)}`);
    } catch (e) {
      expect(e).toBeInstanceOf(NixcacheError);
      return e as NixcacheError;
    } finally {
      await store.close();
    }
  }

  it('wrong credentials name the URL, the operation and where the credentials came from', async () => {
    const config = parseStoreUrl(`${s3ConfigFor(s3.endpoint, BUCKET, 'creds').url}`);
    const store = new (await import('../../src/store/binary-cache.js')).BinaryCacheStore(
      config,
      new S3Backend(config, {
        credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'x' },
        maxAttempts: 1,
      }),
    );
    const err = await pushError(store);
    expect(err.code).toBe('IO');
    expect(err.message).toContain(`s3://${BUCKET}/creds/nix-cache-info`);
    expect(err.message).toMatch(/(GetObject|HeadObject|PutObject) failed/);
    expect(err.message).toContain('rejected the credentials');
    expect(err.message).toContain(s3.endpoint);
  });

  it('missing credentials say where nixcache looked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nixcache-nocreds-'));
    const saved = { ...process.env };
    try {
      writeFileSync(join(dir, 'empty'), '');
      for (const k of [
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_SESSION_TOKEN',
        'AWS_PROFILE',
        'AWS_WEB_IDENTITY_TOKEN_FILE',
      ])
        delete process.env[k];
      process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'empty');
      process.env.AWS_CONFIG_FILE = join(dir, 'empty');
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      const config = parseStoreUrl(s3ConfigFor(s3.endpoint, BUCKET, 'nocreds').url);
      const store = new (await import('../../src/store/binary-cache.js')).BinaryCacheStore(
        config,
        new S3Backend(config, { maxAttempts: 1 }),
      );
      const err = await pushError(store);
      expect(err.message).toContain(`s3://${BUCKET}/nocreds/nix-cache-info`);
      // The first request of a push reads nix-cache-info (its StoreDir is checked).
      expect(err.message).toContain('GetObject failed');
      expect(err.message).toMatch(/no usable AWS credentials from the default AWS credential chain/);
    } finally {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreachable endpoint is a NETWORK error naming the URL, the operation and the endpoint', async () => {
    const port = await closedPort();
    const store = s3Store(`http://127.0.0.1:${port}`, BUCKET, 'nowhere', PUSH_PARAMS, { maxAttempts: 1 });
    const started = Date.now();
    const err = await pushError(store);
    expect(err.code).toBe('NETWORK');
    expect(err.message).toContain(`s3://${BUCKET}/nowhere/nix-cache-info`);
    expect(err.message).toContain('GetObject failed');
    expect(err.message).toContain(`endpoint http://127.0.0.1:${port}`);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);

  it('verifyCache against an unreachable endpoint reports the listing failure clearly', async () => {
    const port = await closedPort();
    const store = s3Store(`http://127.0.0.1:${port}`, BUCKET, 'nowhere', PUSH_PARAMS, { maxAttempts: 1 });
    try {
      await expect(verifyCache(store, { trustedKeys: [key.publicKey] })).rejects.toThrow(
        /s3:\/\/faults\/nowhere.*ListObjectsV2 failed.*endpoint http:\/\/127\.0\.0\.1/,
      );
    } finally {
      await store.close();
    }
  });
});
