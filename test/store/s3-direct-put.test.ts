/**
 * The direct small PutObject of the s3:// driver (src/store/s3-direct.ts), against s3rver
 * behind the recording proxy: what it sends, and that anything but success is sent again through
 * the SDK, which then answers as before (retries, error codes), so the direct path never changes
 * an outcome.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectBytes } from '../../src/internal/iter.js';
import type { S3Backend, S3BackendOptions } from '../../src/store/s3.js';
import { type ProxiedS3, startProxiedS3 } from '../helpers/proxied-s3.js';
import { faults, type LoopbackProxy } from '../helpers/proxy.js';
import { rejection } from '../helpers/rejection.js';

const BUCKET = 'fast';
let fixture: ProxiedS3;
let proxy: LoopbackProxy;

beforeAll(async () => {
  fixture = await startProxiedS3([BUCKET]);
  proxy = fixture.proxy;
});

afterAll(async () => {
  await fixture?.stop();
});

function open(options: S3BackendOptions = {}, prefix = ''): S3Backend {
  return fixture.open(BUCKET, options, prefix);
}

/** Requests the SDK sent carry `x-id=PutObject`; direct ones have no query. */
const viaSdk = (url: string) => url.includes('x-id=PutObject');

async function read(b: S3Backend, key: string): Promise<string | undefined> {
  const obj = await b.get(key);
  return obj && new TextDecoder().decode(await collectBytes(obj.body));
}

describe('S3Backend direct small PutObject', () => {
  it('sends one signed request with Content-MD5 and the payload SHA-256; the object reads back', async () => {
    const b = open({}, 'some prefix');
    const body = new TextEncoder().encode('StorePath: /nix/store/x\n');
    proxy.clear();
    const res = await b.put('ab c+d.narinfo', body, { contentType: 'text/x-nix-narinfo' });
    const puts = proxy.find('PUT');
    expect(puts).toHaveLength(1);
    const put = puts[0]!;
    expect(viaSdk(put.url)).toBe(false);
    expect(put.url).toBe('/fast/some%20prefix/ab%20c%2Bd.narinfo');
    expect(put.headers['content-type']).toBe('text/x-nix-narinfo');
    expect(put.headers['content-md5']).toBe(createHash('md5').update(body).digest('base64'));
    expect(put.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(body).digest('hex'));
    expect(put.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=S3RVER\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=content-length;content-md5;content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    expect(res).toEqual({ size: body.length, etag: `"${createHash('md5').update(body).digest('hex')}"` });
    expect(await read(b, 'ab c+d.narinfo')).toBe('StorePath: /nix/store/x\n');
    expect((await b.head('ab c+d.narinfo'))?.etag).toBe(res.etag);
  });

  it('sends the conditional, encoding and storage-class headers', async () => {
    const b = open();
    proxy.clear();
    await b.put('cond.narinfo', new TextEncoder().encode('a'), {
      contentType: 'text/x-nix-narinfo',
      contentEncoding: 'br',
      ifMatch: 'abc',
    });
    await b.put('cond2.narinfo', new TextEncoder().encode('a'), {
      contentType: 'text/x-nix-narinfo',
      ifNoneMatch: true,
    });
    const [first, second] = proxy.find('PUT');
    expect(viaSdk(first!.url) || viaSdk(second!.url)).toBe(false);
    expect(first!.headers['if-match']).toBe('"abc"');
    expect(first!.headers['content-encoding']).toBe('br');
    expect(second!.headers['if-none-match']).toBe('*');
  });

  it('a 503 is sent again through the SDK (which retries); the direct path stays on', async () => {
    const b = open();
    let n = 0;
    proxy.onRequest = (r) => (r.method === 'PUT' && n++ === 0 ? faults.slowDown : undefined);
    proxy.clear();
    try {
      await b.put('busy.narinfo', new TextEncoder().encode('ok'), { contentType: 'text/x-nix-narinfo' });
      await b.put('later.narinfo', new TextEncoder().encode('ok'), { contentType: 'text/x-nix-narinfo' });
    } finally {
      proxy.onRequest = undefined;
    }
    const puts = proxy.find('PUT').map((r) => [viaSdk(r.url), r.status]);
    expect(puts).toEqual([
      [false, 503],
      [true, 200],
      [false, 200],
    ]);
    expect(await read(b, 'busy.narinfo')).toBe('ok');
  });

  it('a reset connection is sent again through the SDK', async () => {
    const b = open();
    let n = 0;
    proxy.onRequest = (r) => (r.method === 'PUT' && n++ === 0 ? faults.reset : undefined);
    try {
      await b.put('reset.narinfo', new TextEncoder().encode('ok'), { contentType: 'text/x-nix-narinfo' });
    } finally {
      proxy.onRequest = undefined;
    }
    expect(await read(b, 'reset.narinfo')).toBe('ok');
  });

  it('three direct attempts in a row without an HTTP answer turn the direct path off', async () => {
    const b = open();
    proxy.onRequest = (r) => (r.method === 'PUT' && !viaSdk(r.url) ? faults.reset : undefined);
    proxy.clear();
    try {
      for (const k of ['r1', 'r2', 'r3', 'r4'])
        await b.put(`${k}.narinfo`, new TextEncoder().encode(k), { contentType: 'text/x-nix-narinfo' });
    } finally {
      proxy.onRequest = undefined;
    }
    expect(proxy.find('PUT').map((r) => viaSdk(r.url))).toEqual([
      false,
      true,
      false,
      true,
      false,
      true,
      true,
    ]);
    expect(await read(b, 'r4.narinfo')).toBe('r4');
  });

  it('a 403 gives the SDK error, and turns the direct path off for the backend', async () => {
    const b = open();
    proxy.onRequest = (r) => (r.url.includes('denied') ? faults.accessDenied : undefined);
    proxy.clear();
    try {
      const err = await rejection(
        b.put('denied.narinfo', new TextEncoder().encode('x'), { contentType: 'text/x-nix-narinfo' }),
      );
      expect(err.code).toBe('IO');
      expect(err.message).toContain('s3://fast/denied.narinfo: PutObject failed: HTTP 403 AccessDenied');
    } finally {
      proxy.onRequest = undefined;
    }
    await b.put('after.narinfo', new TextEncoder().encode('ok'), { contentType: 'text/x-nix-narinfo' });
    expect(proxy.find('PUT').map((r) => viaSdk(r.url))).toEqual([false, true, true]);
  });

  it('a 412 is a CONFLICT at once, as through the SDK (the write is not sent again)', async () => {
    const b = open();
    proxy.onRequest = (r) => (r.method === 'PUT' ? faults.preconditionFailed : undefined);
    proxy.clear();
    try {
      const err = await rejection(
        b.put('race.narinfo', new TextEncoder().encode('x'), {
          contentType: 'text/x-nix-narinfo',
          ifMatch: '"abc"',
        }),
      );
      expect(err.code).toBe('CONFLICT');
      expect(err.message).toContain(
        's3://fast/race.narinfo: PutObject failed: precondition failed, the object changed or exists (HTTP 412 PreconditionFailed',
      );
    } finally {
      proxy.onRequest = undefined;
    }
    expect(proxy.find('PUT')).toHaveLength(1);
    // A lost precondition says nothing against the direct path.
    await b.put('race-later.narinfo', new TextEncoder().encode('x'), { contentType: 'text/x-nix-narinfo' });
    expect(proxy.find('PUT').map((r) => viaSdk(r.url))).toEqual([false, false]);
  });

  it('an abort fails with ABORTED and writes nothing', async () => {
    const b = open();
    const ac = new AbortController();
    proxy.onRequest = (r) => (r.url.includes('aborted') ? { kind: 'delay', ms: 2000 } : undefined);
    try {
      const p = b.put('aborted.narinfo', new TextEncoder().encode('x'), {
        contentType: 'text/x-nix-narinfo',
        signal: ac.signal,
      });
      setTimeout(() => ac.abort(), 100);
      expect((await rejection(p)).code).toBe('ABORTED');
    } finally {
      proxy.onRequest = undefined;
    }
    expect(await b.head('aborted.narinfo')).toBeUndefined();
  });

  it('fastPut: false, streamed bodies and a caller-built client use the SDK', async () => {
    const sdkOnly = open({ fastPut: false });
    proxy.clear();
    await sdkOnly.put('sdk.narinfo', new TextEncoder().encode('x'), { contentType: 'text/x-nix-narinfo' });
    const b = open();
    async function* body() {
      yield new TextEncoder().encode('streamed');
    }
    await b.put('nar/stream.nar', body(), { contentType: 'application/x-nix-nar' });
    const withClient = open({ client: b.client });
    await withClient.put('client.narinfo', new TextEncoder().encode('x'), {
      contentType: 'text/x-nix-narinfo',
    });
    const puts = proxy.find('PUT');
    expect(puts.length).toBeGreaterThanOrEqual(3);
    expect(puts.every((r) => viaSdk(r.url))).toBe(true);
    expect(await read(b, 'nar/stream.nar')).toBe('streamed');
  });
});
