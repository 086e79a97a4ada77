/**
 * S3 at scale (issue 11 item 4), through a recording proxy in front of s3rver: listing fetches
 * the next ListObjectsV2 page while the current one is consumed (one page ahead, no more), a
 * whole-cache verify keeps tens of narinfo GETs in flight, and 503 SlowDown answers are retried
 * with backoff until the request succeeds.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticCache, type SyntheticCache } from '../../bench/synthetic-cache.js';
import { verifyCache } from '../../src/cache/verify.js';
import { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { S3Backend, type S3BackendOptions } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { faults, type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { S3RVER_CREDENTIALS, type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';

const BUCKET = 'scale';
const COUNT = 160;
let s3: S3rverHandle;
let proxy: LoopbackProxy;
let work: string;
let cache: SyntheticCache;
const backends: S3Backend[] = [];

function backend(endpoint: string, options: S3BackendOptions = {}): S3Backend {
  const b = new S3Backend(parseStoreUrl(s3ConfigFor(endpoint, BUCKET).url), {
    credentials: S3RVER_CREDENTIALS,
    ...options,
  });
  backends.push(b);
  return b;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nixcache-s3-scale-'));
  cache = await generateSyntheticCache({ dir: work, count: COUNT, seed: 9 });
  s3 = await startS3rver({ buckets: [BUCKET] });
  proxy = await startProxy({ target: s3.endpoint, maxRecordBytes: 64 });
  const direct = backend(s3.endpoint);
  const names = readdirSync(work);
  for (let i = 0; i < names.length; i += 16) {
    await Promise.all(
      names.slice(i, i + 16).map((name) =>
        direct.put(name, readFileSync(join(work, name)), {
          contentType: name.endsWith('.narinfo') ? 'text/x-nix-narinfo' : 'text/x-nix-cache-info',
        }),
      ),
    );
  }
}, 120_000);

afterAll(async () => {
  for (const b of backends) await b.close();
  await proxy?.close();
  await s3?.stop();
  rmSync(work, { recursive: true, force: true });
});

const lists = () => proxy.find('GET').filter((r) => r.url.includes('list-type=2'));

describe('S3 at scale', () => {
  it('fetches the next listing page while the current one is consumed, one page ahead only', async () => {
    const before = lists().length;
    const b = backend(proxy.endpoint, { listPageSize: 40 });
    const keys = b.list('', { recursive: false })[Symbol.asyncIterator]();
    const first = await keys.next();
    expect(first.done).toBe(false);
    // The consumer sits on the first key: page 2 is requested, page 3 is not.
    await new Promise((r) => setTimeout(r, 300));
    expect(lists().length - before).toBe(2);
    const all = [first.value as string];
    for (let k = await keys.next(); !k.done; k = await keys.next()) all.push(k.value);
    expect(all.filter((k) => k.endsWith('.narinfo'))).toHaveLength(COUNT);
    expect(lists().length - before).toBe(Math.ceil((COUNT + 1) / 40));
  });

  it('keeps tens of narinfo GETs in flight and retries 503 SlowDown with backoff', async () => {
    let active = 0;
    let peak = 0;
    const seen = new Set<string>();
    proxy.onRequest = (r) => {
      if (r.method !== 'GET' || !r.url.includes('.narinfo')) return undefined;
      active++;
      peak = Math.max(peak, active);
      setTimeout(() => active--, 150);
      // The first attempt of every narinfo is throttled; the retry goes through. Both are slow,
      // so the requests in flight pile up at the proxy.
      // One object, whether the SDK sent the request (`?x-id=GetObject`) or the direct path did.
      const object = r.url.split('?')[0]!;
      if (!seen.has(object)) {
        seen.add(object);
        return { kind: 'delay', ms: 150, next: faults.slowDown };
      }
      return { kind: 'delay', ms: 150 };
    };
    try {
      const store = new BinaryCacheStore(
        parseStoreUrl(s3ConfigFor(proxy.endpoint, BUCKET).url),
        backend(proxy.endpoint),
      );
      const { summary } = await verifyCache(store, { trustedKeys: [cache.publicKey], contents: false });
      expect(summary).toMatchObject({ total: COUNT, ok: COUNT });
      const narinfoGets = proxy.find('GET').filter((r) => r.url.includes('.narinfo'));
      expect(narinfoGets.filter((r) => r.fault === 'status')).toHaveLength(COUNT);
      expect(peak).toBeGreaterThanOrEqual(32);
    } finally {
      proxy.onRequest = undefined;
    }
  }, 120_000);
});
