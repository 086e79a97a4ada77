/**
 * The direct GetObject and HeadObject of the s3:// driver (src/store/s3-direct.ts), against
 * s3rver behind the recording proxy: they answer what the SDK answers (bodies, metadata,
 * absence), and anything else is sent again through the SDK, which then answers as before
 * (retries, error codes), so the direct path never changes an outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectBytes } from '../../src/internal/iter.js';
import type { ObjectInfo } from '../../src/store/backend.js';
import type { S3Backend, S3BackendOptions } from '../../src/store/s3.js';
import { sentDirect as direct, type ProxiedS3, startProxiedS3 } from '../helpers/proxied-s3.js';
import { faults, type LoopbackProxy } from '../helpers/proxy.js';
import { rejection } from '../helpers/rejection.js';

const BUCKET = 'direct';
let fixture: ProxiedS3;
let proxy: LoopbackProxy;
const BODY = new TextEncoder().encode('StorePath: /nix/store/x\n'.repeat(400));

beforeAll(async () => {
  fixture = await startProxiedS3([BUCKET]);
  proxy = fixture.proxy;
  const b = open();
  await b.put('some prefix/ab c+d.narinfo', BODY, {
    contentType: 'text/x-nix-narinfo',
    contentEncoding: 'br',
  });
  await b.put('plain.narinfo', new TextEncoder().encode('plain'), { contentType: 'text/x-nix-narinfo' });
});

afterAll(async () => {
  await fixture?.stop();
});

function open(options: S3BackendOptions = {}, bucket = BUCKET): S3Backend {
  return fixture.open(bucket, options);
}

/** What a read saw: its method, whether it went direct, and its status. */
const reads = () =>
  proxy.requests
    .filter((r) => r.method === 'GET' || r.method === 'HEAD')
    .map((r) => [r.method, direct(r) ? 'direct' : 'sdk', r.status]);

async function text(b: S3Backend, key: string): Promise<string | undefined> {
  const obj = await b.get(key);
  return obj && new TextDecoder().decode(await collectBytes(obj.body));
}

/** Metadata without the body, to compare the direct path with the SDK's. */
async function got(b: S3Backend, key: string): Promise<(ObjectInfo & { bytes: Uint8Array }) | undefined> {
  const obj = await b.get(key);
  if (!obj) return undefined;
  const { body, ...info } = obj;
  return { ...info, bytes: await collectBytes(body) };
}

describe('S3Backend direct GetObject and HeadObject', () => {
  it('GET and HEAD answer what the SDK answers, in one signed request each', async () => {
    const b = open();
    const sdk = open({ directRequests: false });
    proxy.clear();
    const key = 'some prefix/ab c+d.narinfo';
    const ours = await got(b, key);
    const theirs = await got(sdk, key);
    expect(ours).toEqual(theirs);
    expect(ours).toMatchObject({
      size: BODY.length,
      contentType: 'text/x-nix-narinfo',
      contentEncoding: 'br',
    });
    expect(ours!.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(await b.head(key)).toEqual(await sdk.head(key));
    expect((await b.head(key))?.lastModified).toBeGreaterThan(Date.now() - 600_000);
    const first = proxy.requests.find((r) => r.method === 'GET')!;
    expect(first.url).toBe('/direct/some%20prefix/ab%20c%2Bd.narinfo');
    expect(first.headers['x-amz-content-sha256']).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(first.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=S3RVER\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    expect(reads()).toEqual([
      ['GET', 'direct', 200],
      ['GET', 'sdk', 200],
      ['HEAD', 'direct', 200],
      ['HEAD', 'sdk', 200],
      ['HEAD', 'direct', 200],
    ]);
  });

  it('a missing object is absent after one direct request', async () => {
    const b = open();
    proxy.clear();
    expect(await b.get('missing.narinfo')).toBeUndefined();
    expect(await b.head('missing.narinfo')).toBeUndefined();
    expect(reads()).toEqual([
      ['GET', 'direct', 404],
      ['HEAD', 'direct', 404],
    ]);
  });

  it('a missing bucket gets the SDK’s error, and the direct path stays on', async () => {
    const b = open({}, 'no-such-bucket');
    const err = await rejection(b.get('x.narinfo'));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('NoSuchBucket');
    proxy.clear();
    expect(await text(open(), 'plain.narinfo')).toBe('plain');
    expect(reads()).toEqual([['GET', 'direct', 200]]);
  });

  it('a 500 or 503 is sent again through the SDK after a pause; the direct path stays on', async () => {
    const b = open();
    let n = 0;
    proxy.onRequest = (r) =>
      r.method === 'GET' && n++ < 2 ? (n === 1 ? faults.slowDown : faults.internalError) : undefined;
    proxy.clear();
    try {
      expect(await text(b, 'plain.narinfo')).toBe('plain');
      expect(await text(b, 'plain.narinfo')).toBe('plain');
      expect(await text(b, 'plain.narinfo')).toBe('plain');
    } finally {
      proxy.onRequest = undefined;
    }
    expect(reads()).toEqual([
      ['GET', 'direct', 503],
      ['GET', 'sdk', 500],
      ['GET', 'sdk', 200],
      ['GET', 'direct', 200],
      ['GET', 'direct', 200],
    ]);
  });

  it('a refused signature gives the SDK’s answer, and turns the direct path off', async () => {
    const b = open();
    proxy.onRequest = (r) =>
      r.method === 'GET' && direct(r)
        ? {
            kind: 'status',
            status: 403,
            body: '<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>',
          }
        : undefined;
    proxy.clear();
    try {
      expect(await text(b, 'plain.narinfo')).toBe('plain');
      expect(await text(b, 'plain.narinfo')).toBe('plain');
    } finally {
      proxy.onRequest = undefined;
    }
    expect(reads()).toEqual([
      ['GET', 'direct', 403],
      ['GET', 'sdk', 200],
      ['GET', 'sdk', 200],
    ]);
  });

  it('a body cut short fails with NETWORK naming the object', async () => {
    const b = open({ maxAttempts: 1 });
    proxy.onRequest = (r) => (r.method === 'GET' ? { kind: 'truncate', afterBytes: 100 } : undefined);
    try {
      const err = await rejection(text(b, 'some prefix/ab c+d.narinfo'));
      expect(err.code).toBe('NETWORK');
      expect(err.message).toContain('s3://direct/some prefix/ab c+d.narinfo');
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('no answer within the first-byte timeout is sent again through the SDK', async () => {
    const b = open({ firstByteTimeoutMs: 200, maxAttempts: 1 });
    let n = 0;
    proxy.onRequest = (r) => (r.method === 'GET' && n++ === 0 ? { kind: 'delay', ms: 1000 } : undefined);
    proxy.clear();
    try {
      expect(await text(b, 'plain.narinfo')).toBe('plain');
    } finally {
      proxy.onRequest = undefined;
    }
    expect(reads().map((r) => r.slice(0, 2))).toEqual([
      ['GET', 'direct'],
      ['GET', 'sdk'],
    ]);
  });

  it('many requests in flight on one signal raise no listener-leak warning', async () => {
    const b = open();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const signal = new AbortController().signal;
      const got = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 2 ? b.head('plain.narinfo', { signal }) : b.get('plain.narinfo', { signal }),
        ),
      );
      for (const [i, g] of got.entries()) {
        if (i % 2 === 0) await collectBytes((g as { body: AsyncIterable<Uint8Array> }).body);
      }
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
  });

  it('an abort fails with ABORTED', async () => {
    const b = open();
    const ac = new AbortController();
    proxy.onRequest = (r) => (r.method === 'GET' ? { kind: 'delay', ms: 2000 } : undefined);
    try {
      const p = b.get('plain.narinfo', { signal: ac.signal });
      setTimeout(() => ac.abort(), 100);
      expect((await rejection(p)).code).toBe('ABORTED');
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('directRequests: false (or the former fastPut: false) and a caller-built client use the SDK', async () => {
    const b = open();
    const clients = [open({ directRequests: false }), open({ fastPut: false }), open({ client: b.client })];
    proxy.clear();
    for (const c of clients) {
      expect(await text(c, 'plain.narinfo')).toBe('plain');
      expect(await c.head('plain.narinfo')).toBeDefined();
    }
    expect(reads()).toHaveLength(6);
    expect(reads().every((r) => r[1] === 'sdk')).toBe(true);
  });
});
