/**
 * The s3:// storage driver against s3rver started by the test on 127.0.0.1 (issue 5), with a
 * recording loopback proxy in front of it for what s3rver lacks: the exact policy JSON, lifecycle
 * XML and conditional headers nixcache sends, and faults (403, 412, 503, resets).
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectBytes } from '../../src/internal/iter.js';
import { S3Backend, type S3BackendOptions, s3ClientConfig } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { faults, type LoopbackProxy, startProxy } from '../helpers/proxy.js';
import { rejection } from '../helpers/rejection.js';
import { S3RVER_CREDENTIALS, type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const MiB = 1024 * 1024;
const BUCKET = 'cache';

let s3: S3rverHandle;
let proxy: LoopbackProxy;
const warnings: string[] = [];
const backends: S3Backend[] = [];

function open(endpoint: string, path = BUCKET, query = '', options: S3BackendOptions = {}): S3Backend {
  let url = s3ConfigFor(endpoint, path.split('/')[0]!, path.split('/').slice(1).join('/')).url;
  // A repeated parameter keeps its first value (as in Nix): the test's own ones replace the defaults.
  for (const [name, value] of new URLSearchParams(query)) {
    const u = new URL(url);
    u.searchParams.set(name, value);
    url = u.toString();
  }
  const b = new S3Backend(parseStoreUrl(url), {
    credentials: S3RVER_CREDENTIALS,
    onWarning: (m) => warnings.push(m),
    ...options,
  });
  backends.push(b);
  return b;
}

/** Deterministic pseudo-random bytes (xorshift), so corruption anywhere shows. */
function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The bytes as an async stream of `chunk`-sized pieces (unknown length to the consumer). */
async function* chunked(bytes: Uint8Array, chunk = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += chunk) {
    yield bytes.subarray(i, i + chunk);
    if ((i / chunk) % 16 === 0) await new Promise((r) => setImmediate(r));
  }
}

async function readAll(b: S3Backend, key: string): Promise<Uint8Array | undefined> {
  const obj = await b.get(key);
  return obj && collectBytes(obj.body);
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 9;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A tiny XML reader for the SDK's request bodies: elements to nested objects, repeated names to arrays. */
function parseXml(xml: string): Record<string, unknown> {
  const src = xml.replace(/<\?xml[^>]*\?>/, '').trim();
  let at = 0;
  function node(): [string, unknown] {
    const open = /^<([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/.exec(src.slice(at));
    if (!open) throw new Error(`bad XML at ${at}: ${src.slice(at, at + 40)}`);
    at += open[0].length;
    const name = open[1]!;
    if (open[3] === '/') return [name, ''];
    const children: Record<string, unknown> = {};
    let text = '';
    let hasChildren = false;
    for (;;) {
      if (src.startsWith(`</${name}>`, at)) {
        at += name.length + 3;
        return [name, hasChildren ? children : text];
      }
      if (src[at] === '<') {
        hasChildren = true;
        const [k, v] = node();
        const prev = children[k];
        children[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      } else {
        const end = src.indexOf('<', at);
        text += src.slice(at, end);
        at = end;
      }
    }
  }
  const [name, value] = node();
  return { [name]: value };
}

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET, 'listing'] });
  proxy = await startProxy({ target: s3.endpoint });
});

afterAll(async () => {
  for (const b of backends) await b.close();
  await proxy?.close();
  await s3?.stop();
});

describe('S3Backend basics', () => {
  it('puts, heads, gets, lists and deletes an object', async () => {
    const b = open(s3.endpoint);
    const text = new TextEncoder().encode('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
    const info = await b.put('nix-cache-info', text, {
      contentType: 'text/x-nix-cache-info',
      size: text.length,
    });
    expect(info.size).toBe(text.length);
    expect(info.etag).toMatch(/^"[0-9a-f]{32}"$/);

    const head = await b.head('nix-cache-info');
    expect(head).toMatchObject({ size: text.length, contentType: 'text/x-nix-cache-info', etag: info.etag });

    const obj = await b.get('nix-cache-info');
    expect(obj).toMatchObject({ size: text.length, contentType: 'text/x-nix-cache-info' });
    expect(sameBytes(await collectBytes(obj!.body), text)).toBe(true);

    const keys: string[] = [];
    for await (const k of b.list('nix-')) keys.push(k);
    expect(keys).toEqual(['nix-cache-info']);

    await b.delete('nix-cache-info');
    expect(await b.head('nix-cache-info')).toBeUndefined();
    await b.delete('nix-cache-info'); // absent is fine
  });

  it('sets Content-Type and Content-Encoding and streams a known-size body through one PutObject', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    const body = pattern(3 * MiB, 7);
    await b.put('x.narinfo', chunked(body), {
      contentType: 'text/x-nix-narinfo',
      contentEncoding: 'br',
      size: body.length,
    });
    const puts = proxy.find('PUT', '/cache/x.narinfo');
    expect(puts).toHaveLength(1);
    const h = puts[0]!.headers;
    expect(h['content-length']).toBe(String(body.length));
    expect(h['content-type']).toBe('text/x-nix-narinfo');
    expect(h['content-encoding']).toBe('br');
    // WHEN_REQUIRED: no aws-chunked framing, no checksum trailer on a plain PutObject.
    expect(h['x-amz-decoded-content-length']).toBeUndefined();
    expect(h['x-amz-trailer']).toBeUndefined();
    expect(Object.keys(h).filter((k) => k.startsWith('x-amz-checksum'))).toEqual([]);
    expect(puts[0]!.bodyBytes).toBe(body.length);
    const head = await b.head('x.narinfo');
    expect(head).toMatchObject({ contentEncoding: 'br', size: body.length });
    expect(sameBytes(await readAll(b, 'x.narinfo'), body)).toBe(true);
  });

  it('reads a missing key as undefined (404)', async () => {
    const b = open(s3.endpoint);
    expect(await b.get('0000000000000000000000000000000z.narinfo')).toBeUndefined();
    expect(await b.head('0000000000000000000000000000000z.narinfo')).toBeUndefined();
  });

  it('reads a 403 AccessDenied as undefined (S3 answers 403 for missing keys without ListBucket)', async () => {
    const b = open(proxy.endpoint);
    proxy.onRequest = (r) => (r.url.includes('denied') ? faults.accessDenied : undefined);
    try {
      expect(await b.get('denied.narinfo')).toBeUndefined();
      expect(await b.head('denied.narinfo')).toBeUndefined();
      expect(proxy.find('GET', 'denied').at(-1)?.status).toBe(403);
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('names a missing bucket instead of calling every key absent', async () => {
    const b = open(s3.endpoint, 'no-such-bucket');
    const err = await rejection(b.get('nix-cache-info'));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain("bucket 'no-such-bucket' does not exist");
  });

  it('handles a key prefix (s3://bucket/some/prefix)', async () => {
    const root = open(s3.endpoint);
    const b = open(s3.endpoint, `${BUCKET}/some/prefix`);
    await root.put('outside.narinfo', new Uint8Array([1]), { contentType: 'text/x-nix-narinfo' });
    await b.put('abc.narinfo', new TextEncoder().encode('x'), { contentType: 'text/x-nix-narinfo' });
    await b.put('nar/abc.nar.xz', new Uint8Array([1, 2, 3]), { contentType: 'application/x-nix-nar' });
    expect(await root.head('some/prefix/abc.narinfo')).toMatchObject({ size: 1 });
    const keys: string[] = [];
    for await (const k of b.list('')) keys.push(k);
    expect(keys.sort()).toEqual(['abc.narinfo', 'nar/abc.nar.xz']);
    const nars: string[] = [];
    for await (const k of b.list('nar/')) nars.push(k);
    expect(nars).toEqual(['nar/abc.nar.xz']);
    expect(await b.head('outside.narinfo')).toBeUndefined();
    await b.delete('abc.narinfo');
    expect(await root.head('some/prefix/abc.narinfo')).toBeUndefined();
  });

  it('lists more than 1000 keys across pages (continuation tokens)', async () => {
    const direct = open(s3.endpoint, 'listing');
    const n = 1100;
    const names = Array.from({ length: n }, (_, i) => `${String(i).padStart(32, '0')}.narinfo`);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++]!;
        await direct.put(name, new Uint8Array([0x31]), { contentType: 'text/x-nix-narinfo', size: 1 });
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const viaProxy = open(proxy.endpoint, 'listing');
    proxy.clear();
    const listed: string[] = [];
    for await (const k of viaProxy.list('')) listed.push(k);
    expect(listed.sort()).toEqual(names);
    const pages = proxy.find('GET', /^\/listing\/?\?/);
    expect(pages.length).toBeGreaterThanOrEqual(2);
    expect(pages[1]!.url).toContain('continuation-token=');
  }, 60_000);

  it('lists only top-level keys when not recursive (Delimiter /), so narinfo listing skips nar/', async () => {
    const b = open(proxy.endpoint, 'delimited');
    await b.ensureBucket();
    for (const k of ['a.narinfo', 'nar/x.nar.xz', 'nar/y.nar.xz', 'b.ls']) {
      await b.put(k, new Uint8Array([1]), { contentType: 'application/octet-stream' });
    }
    proxy.clear();
    const top: string[] = [];
    for await (const k of b.list('', { recursive: false })) top.push(k);
    expect(top.sort()).toEqual(['a.narinfo', 'b.ls']);
    expect(proxy.find('GET', /^\/delimited\/?\?/)[0]!.url).toContain('delimiter=%2F');
    const all: string[] = [];
    for await (const k of b.list('')) all.push(k);
    expect(all).toHaveLength(4);
  });
});

describe('S3Backend streaming and multipart uploads', () => {
  it('uploads an async body of unknown length byte-identical (aws-chunked regression)', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    const body = pattern(4 * MiB + 12345, 3);
    const info = await b.put('nar/stream.nar', chunked(body, 50_000), {
      contentType: 'application/x-nix-nar',
    });
    expect(info.size).toBe(body.length);
    const stored = await readAll(b, 'nar/stream.nar');
    expect(stored?.length).toBe(body.length);
    expect(sameBytes(stored, body)).toBe(true);
    for (const r of proxy.find('PUT', 'stream.nar')) {
      expect(r.headers['content-encoding']).toBeUndefined();
      expect(r.headers['x-amz-trailer']).toBeUndefined();
    }
  });

  it('the same check catches a client with the SDK default checksum settings', async () => {
    // What the WHEN_REQUIRED settings prevent: the default client frames a streamed body as
    // aws-chunked with a CRC32 trailer, and s3rver (like other S3-compatible servers) stores the
    // framing inside the object. Run through S3Backend with an injected default client.
    const defaults = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
    });
    try {
      const b = open(s3.endpoint, BUCKET, '', { client: defaults });
      const body = pattern(6 * MiB, 9); // above the 5 MiB buffered size: a streamed PutObject
      await b.put('nar/default-client.nar', chunked(body), {
        contentType: 'application/x-nix-nar',
        size: body.length,
      });
      const stored = await readAll(open(s3.endpoint), 'nar/default-client.nar');
      expect(sameBytes(stored, body)).toBe(false);
      expect(new TextDecoder('latin1').decode(stored!.subarray(-64))).toContain('x-amz-checksum-crc32');
      // And a stream of unknown length fails outright with the defaults.
      await expect(
        defaults.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: 'nar/default-unknown.nar',
            Body: (await import('node:stream')).Readable.from(chunked(body)),
          }),
        ),
      ).rejects.toThrow();
    } finally {
      defaults.destroy();
    }
  });

  it('uploads >= 12 MiB as a multipart upload with 5 MiB parts, read back identical', async () => {
    const b = open(
      proxy.endpoint,
      BUCKET,
      '&multipart-upload=true&multipart-chunk-size=5242880&multipart-threshold=5242880',
    );
    proxy.clear();
    const body = pattern(12 * MiB + 777, 5);
    await b.put('nar/big.nar.xz', chunked(body, 256 * 1024), {
      contentType: 'application/x-nix-nar',
      size: body.length,
    });
    expect(proxy.find('POST', 'big.nar.xz?uploads')).toHaveLength(1);
    const parts = proxy.find('PUT', /big\.nar\.xz\?.*partNumber=/);
    expect(parts.map((p) => p.bodyBytes).sort((x, y) => y - x)).toEqual([5 * MiB, 5 * MiB, 2 * MiB + 777]);
    expect(proxy.find('POST', /big\.nar\.xz\?uploadId=/)).toHaveLength(1);
    expect(proxy.find('POST', 'big.nar.xz?uploads')[0]!.headers['content-type']).toBe(
      'application/x-nix-nar',
    );
    const head = await b.head('nar/big.nar.xz');
    expect(head?.size).toBe(body.length);
    expect(sameBytes(await readAll(b, 'nar/big.nar.xz'), body)).toBe(true);
  });

  it('uploads an unknown-size body larger than one part as multipart, identical', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    const body = pattern(11 * MiB + 1, 11);
    await b.put('nar/unknown-big.nar', chunked(body, 100_000), { contentType: 'application/x-nix-nar' });
    expect(proxy.find('PUT', /unknown-big\.nar\?.*partNumber=/)).toHaveLength(3);
    expect(sameBytes(await readAll(b, 'nar/unknown-big.nar'), body)).toBe(true);
  });

  async function* failing(bytes: number, error: Error): AsyncGenerator<Uint8Array> {
    yield* chunked(pattern(bytes, 2));
    throw error;
  }

  it('a body that errors midway rejects with that error and leaves no object (small: never sent)', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    const boom = new Error('compressor exploded');
    const err = await rejection(
      b.put('nar/broken-small.nar', failing(1 * MiB, boom), {
        contentType: 'application/x-nix-nar',
        size: 2 * MiB,
      }),
    );
    expect(err).toMatchObject({ code: 'IO', cause: boom });
    expect(err.message).toBe(
      `s3://cache/nar/broken-small.nar: PutObject failed: reading the body failed: compressor exploded (endpoint ${proxy.endpoint})`,
    );
    expect(proxy.find('PUT', 'broken-small')).toHaveLength(0);
    expect(await b.head('nar/broken-small.nar')).toBeUndefined();
  });

  it('a streamed PutObject whose body errors is cut short below its Content-Length', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    const boom = new Error('disk read failed');
    const declared = 8 * MiB;
    await expect(
      b.put('nar/broken-stream.nar', failing(3 * MiB, boom), {
        contentType: 'application/x-nix-nar',
        size: declared,
      }),
    ).rejects.toMatchObject({ code: 'IO', cause: boom });
    await new Promise((r) => setTimeout(r, 50));
    const [put] = proxy.find('PUT', 'broken-stream');
    expect(put!.headers['content-length']).toBe(String(declared));
    expect(put!.bodyBytes).toBeLessThan(declared);
    // S3, MinIO, R2 and Garage refuse a body shorter than its Content-Length; s3rver stores it.
    const head = await b.head('nar/broken-stream.nar');
    expect(head === undefined || (head.size ?? 0) < declared).toBe(true);
  });

  it('a body that errors midway rejects with that error and leaves no object (multipart)', async () => {
    const b = open(proxy.endpoint);
    warnings.length = 0;
    proxy.clear();
    const { NixcacheError } = await import('../../src/errors.js');
    const boom = new NixcacheError('COMPRESSION', 'xz: corrupt input');
    await expect(
      b.put('nar/broken-multi.nar', failing(12 * MiB, boom), { contentType: 'application/x-nix-nar' }),
    ).rejects.toBe(boom);
    expect(await b.head('nar/broken-multi.nar')).toBeUndefined();
    // s3rver answers AbortMultipartUpload with 405: a warning, and the original error survives.
    const aborts = proxy.find('DELETE', /broken-multi\.nar\?uploadId=/);
    expect(aborts).toHaveLength(1);
    expect(aborts[0]!.status).toBe(405);
    expect(warnings.some((w) => w.includes('could not abort multipart upload') && w.includes('405'))).toBe(
      true,
    );
  });

  it('rejects a body whose length differs from the declared size, leaving no object', async () => {
    const b = open(s3.endpoint);
    const short = await rejection(
      b.put('short.narinfo', new Uint8Array(10), { contentType: 'text/x-nix-narinfo', size: 20 }),
    );
    expect(short.code).toBe('BAD_ARGUMENT');
    expect(short.message).toContain('declared size is 20');
    const long = await rejection(
      b.put('long.narinfo', new Uint8Array(30), { contentType: 'text/x-nix-narinfo', size: 20 }),
    );
    expect(long.code).toBe('BAD_ARGUMENT');
    expect(await b.head('short.narinfo')).toBeUndefined();
    expect(await b.head('long.narinfo')).toBeUndefined();
  });
});

describe('S3Backend conditional writes', () => {
  it('sends If-None-Match: * and a quoted If-Match (s3rver ignores both)', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    const first = await b.put('cond.narinfo', new TextEncoder().encode('a'), {
      contentType: 'text/x-nix-narinfo',
      ifNoneMatch: true,
    });
    expect(proxy.find('PUT', 'cond.narinfo')[0]!.headers['if-none-match']).toBe('*');
    // s3rver does not implement conditional writes: a second create-only PUT also succeeds there.
    await b.put('cond.narinfo', new TextEncoder().encode('b'), {
      contentType: 'text/x-nix-narinfo',
      ifNoneMatch: true,
    });
    const etag = first.etag!.replaceAll('"', '');
    await b.put('cond.narinfo', new TextEncoder().encode('c'), {
      contentType: 'text/x-nix-narinfo',
      ifMatch: etag,
    });
    const puts = proxy.find('PUT', 'cond.narinfo');
    expect(puts[2]!.headers['if-match']).toBe(`"${etag}"`);
    expect(puts[2]!.headers['if-none-match']).toBeUndefined();
    expect(b.conditionalWrites).toBe(true);
  });

  it('sends If-None-Match on CompleteMultipartUpload for multipart writes', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    await b.put('nar/cond-multi.nar', chunked(pattern(6 * MiB)), {
      contentType: 'application/x-nix-nar',
      ifNoneMatch: true,
    });
    const complete = proxy.find('POST', /cond-multi\.nar\?uploadId=/);
    expect(complete).toHaveLength(1);
    expect(complete[0]!.headers['if-none-match']).toBe('*');
  });

  it('maps 412 Precondition Failed to CONFLICT', async () => {
    const b = open(proxy.endpoint);
    proxy.onRequest = (r) =>
      r.method === 'PUT' && r.url.includes('race.narinfo') ? faults.preconditionFailed : undefined;
    try {
      const err = await rejection(
        b.put('race.narinfo', new TextEncoder().encode('x'), {
          contentType: 'text/x-nix-narinfo',
          ifMatch: '"abc"',
        }),
      );
      expect(err.code).toBe('CONFLICT');
      expect(err.message).toContain('s3://cache/race.narinfo: PutObject failed');
      expect(err.message).toContain('412');
    } finally {
      proxy.onRequest = undefined;
    }
  });
});

describe('S3Backend bucket administration', () => {
  it('creates a missing bucket once (HeadBucket, CreateBucket)', async () => {
    const b = open(proxy.endpoint, 'fresh-bucket');
    proxy.clear();
    expect(await b.ensureBucket()).toEqual({ created: true });
    expect(await b.ensureBucket()).toEqual({ created: false });
    expect(proxy.find('PUT', '/fresh-bucket')).toHaveLength(1);
    expect(proxy.find('HEAD', '/fresh-bucket')).toHaveLength(2);
  });

  it('sends a LocationConstraint outside us-east-1', async () => {
    const b = open(proxy.endpoint, 'fresh-eu', '&region=eu-west-2');
    proxy.clear();
    await b.ensureBucket();
    const create = proxy.find('PUT', '/fresh-eu')[0]!;
    expect(parseXml(create.text())).toEqual({
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-2' },
    });
  });

  it('sends the documented anonymous-read policy; s3rver answers 501 → UNSUPPORTED', async () => {
    const b = open(proxy.endpoint, `${BUCKET}/some/prefix`);
    proxy.clear();
    const err = await rejection(b.setPublicRead());
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain('anonymous read access');
    expect(err.message).toContain(proxy.endpoint);
    expect(err.message).toContain('HTTP 501 NotImplemented');
    for (const name of ['AWS S3', 'MinIO', 'R2', 'Garage']) expect(err.message).toContain(name);
    const put = proxy.find('PUT', /^\/cache\/?\?policy/)[0]!;
    expect(put.headers['content-md5']).toBe(createHash('md5').update(put.body).digest('base64'));
    expect(JSON.parse(put.text())).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'NixcachePublicRead',
          Effect: 'Allow',
          Principal: { AWS: ['*'] },
          Action: ['s3:GetObject'],
          Resource: ['arn:aws:s3:::cache/some/prefix/*'],
        },
      ],
    });
  });

  it('keeps the other statements of an existing bucket policy', async () => {
    const b = open(proxy.endpoint);
    const existing = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'Other',
          Effect: 'Allow',
          Principal: { AWS: ['arn:aws:iam::1:root'] },
          Action: 's3:*',
          Resource: '*',
        },
        {
          Sid: 'NixcachePublicRead',
          Effect: 'Allow',
          Principal: '*',
          Action: 's3:GetObject',
          Resource: 'old',
        },
      ],
    };
    proxy.clear();
    proxy.onRequest = (r) => {
      if (!r.url.includes('?policy')) return undefined;
      if (r.method === 'GET') return { kind: 'status', status: 200, body: JSON.stringify(existing) };
      if (r.method === 'PUT') return { kind: 'status', status: 204 };
      return undefined;
    };
    try {
      await b.setPublicRead();
      const sent = JSON.parse(proxy.find('PUT', '?policy')[0]!.text()) as {
        Statement: { Sid: string; Resource: unknown }[];
      };
      expect(sent.Statement.map((s) => s.Sid)).toEqual(['Other', 'NixcachePublicRead']);
      expect(sent.Statement[1]!.Resource).toEqual(['arn:aws:s3:::cache/*']);
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('sends the documented lifecycle XML; s3rver answers 501 → UNSUPPORTED', async () => {
    const b = open(proxy.endpoint, `${BUCKET}/some/prefix`);
    proxy.clear();
    const err = await rejection(b.setExpiry(30));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain('expiry');
    for (const name of ['AWS S3', 'MinIO', 'R2', 'Garage']) expect(err.message).toContain(name);
    const put = proxy.find('PUT', /^\/cache\/?\?lifecycle/)[0]!;
    expect(put.headers['content-md5']).toBe(createHash('md5').update(put.body).digest('base64'));
    expect(put.text()).toContain('xmlns="http://s3.amazonaws.com/doc/2006-03-01/"');
    expect(parseXml(put.text())).toEqual({
      LifecycleConfiguration: {
        Rule: {
          ID: 'nixcache-expiry',
          Status: 'Enabled',
          Filter: { Prefix: 'some/prefix/' },
          Expiration: { Days: '30' },
        },
      },
    });
  });

  it('succeeds where the server has lifecycle rules, keeping other rules', async () => {
    const b = open(proxy.endpoint);
    proxy.clear();
    const existing =
      '<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration><Rule><ID>logs</ID><Filter><Prefix>log/</Prefix></Filter>' +
      '<Status>Enabled</Status><Expiration><Days>7</Days></Expiration></Rule></LifecycleConfiguration>';
    proxy.onRequest = (r) => {
      if (!r.url.includes('?lifecycle')) return undefined;
      if (r.method === 'GET')
        return {
          kind: 'status',
          status: 200,
          body: existing,
          headers: { 'content-type': 'application/xml' },
        };
      return { kind: 'status', status: 200 };
    };
    try {
      await b.setExpiry(90);
      const xml = parseXml(proxy.find('PUT', '?lifecycle')[0]!.text()) as {
        LifecycleConfiguration: { Rule: { ID: string; Filter: unknown; Expiration: unknown }[] };
      };
      expect(xml.LifecycleConfiguration.Rule.map((r) => r.ID)).toEqual(['logs', 'nixcache-expiry']);
      expect(xml.LifecycleConfiguration.Rule[1]).toMatchObject({
        Filter: { Prefix: '' },
        Expiration: { Days: '90' },
      });
    } finally {
      proxy.onRequest = undefined;
    }
    await expect(b.setExpiry(0)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
  });
});

describe('S3Backend errors and aborts', () => {
  it('an unreachable endpoint gives NETWORK naming the URL, the operation and the endpoint', async () => {
    const port = await closedPort();
    const b = open(`http://127.0.0.1:${port}`, BUCKET, '', { maxAttempts: 1 });
    const get = await rejection(b.get('abc.narinfo'));
    expect(get.code).toBe('NETWORK');
    expect(get.message).toBe(
      `s3://cache/abc.narinfo: GetObject failed: connect ECONNREFUSED 127.0.0.1:${port} (endpoint http://127.0.0.1:${port})`,
    );
    expect(get.data).toMatchObject({ url: 's3://cache/abc.narinfo', operation: 'GetObject' });
    const put = await rejection(
      b.put('abc.narinfo', new Uint8Array(3), { contentType: 'text/x-nix-narinfo', size: 3 }),
    );
    expect(put.code).toBe('NETWORK');
    expect(put.message).toContain('s3://cache/abc.narinfo: PutObject failed: connect ECONNREFUSED');
    const list = await rejection(
      (async () => {
        for await (const _ of b.list('')) break;
      })(),
    );
    expect(list.message).toContain('ListObjectsV2 failed');
  });

  it('5xx answers (503 SlowDown, 500) are NETWORK errors with the HTTP status', async () => {
    const b = open(proxy.endpoint, BUCKET, '', { maxAttempts: 1 });
    proxy.onRequest = (r) =>
      r.url.includes('slow') ? faults.slowDown : r.url.includes('ise') ? faults.internalError : undefined;
    try {
      const slow = await rejection(b.get('slow.narinfo'));
      expect(slow.code).toBe('NETWORK');
      expect(slow.message).toContain('HTTP 503 SlowDown');
      const head = await rejection(b.head('ise.narinfo'));
      expect(head.code).toBe('NETWORK');
      expect(head.message).toContain('HeadObject failed: HTTP 500');
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('retries a reset connection (SDK retries) and then succeeds', async () => {
    const b = open(proxy.endpoint);
    await b.put('flaky.narinfo', new TextEncoder().encode('ok'), { contentType: 'text/x-nix-narinfo' });
    let resets = 0;
    proxy.onRequest = (r) => (r.url.includes('flaky') && resets++ === 0 ? faults.reset : undefined);
    try {
      expect(new TextDecoder().decode(await readAll(b, 'flaky.narinfo'))).toBe('ok');
      expect(resets).toBe(2);
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('a truncated response body errors with NETWORK, never passes as complete', async () => {
    const b = open(proxy.endpoint);
    const body = pattern(2 * MiB, 4);
    await b.put('nar/trunc.nar', body, { contentType: 'application/x-nix-nar', size: body.length });
    proxy.onRequest = (r) =>
      r.method === 'GET' && r.url.includes('trunc.nar')
        ? { kind: 'truncate', afterBytes: 100_000 }
        : undefined;
    try {
      const obj = await b.get('nar/trunc.nar');
      const err = await rejection(collectBytes(obj!.body));
      expect(err.code).toBe('NETWORK');
      expect(err.message).toContain('s3://cache/nar/trunc.nar');
    } finally {
      proxy.onRequest = undefined;
    }
  });

  it('wrong credentials give a clear error naming where they came from', async () => {
    const b = new S3Backend(parseStoreUrl(`${s3ConfigFor(s3.endpoint, BUCKET).url}&profile=ci-uploader`), {
      credentials: { accessKeyId: 'WRONG', secretAccessKey: 'x' },
    });
    backends.push(b);
    const err = await rejection(b.get('nix-cache-info'));
    expect(err.code).toBe('IO');
    expect(err.message).toContain('rejected the credentials from the credentials given to nixcache');
    expect(err.message).toContain('InvalidAccessKeyId');
    expect(err.data.profile).toBe('ci-uploader');
  });

  it('a profile with no credentials names the profile', async () => {
    const saved = { ...process.env };
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'nixcache-aws-'));
    writeFileSync(join(dir, 'config'), '');
    writeFileSync(join(dir, 'credentials'), '');
    for (const k of Object.keys(process.env))
      if (k.startsWith('AWS_') && k !== 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED')
        delete process.env[k];
    process.env.AWS_CONFIG_FILE = join(dir, 'config');
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    try {
      const b = new S3Backend(parseStoreUrl(`s3://cache?endpoint=${s3.endpoint}&profile=nixbuilder`), {
        maxAttempts: 1,
      });
      backends.push(b);
      const err = await rejection(b.head('nix-cache-info'));
      expect(err.code).toBe('IO');
      expect(err.message).toContain(
        "s3://cache/nix-cache-info: HeadObject failed: no usable AWS credentials from profile 'nixbuilder'",
      );
    } finally {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an AbortSignal aborts a get before and while the body streams', async () => {
    const b = open(proxy.endpoint);
    const body = pattern(8 * MiB, 6);
    await b.put('nar/abort-get.nar', body, { contentType: 'application/x-nix-nar', size: body.length });

    const early = new AbortController();
    proxy.onRequest = (r) => (r.url.includes('abort-get') ? { kind: 'delay', ms: 2000 } : undefined);
    try {
      const started = Date.now();
      setTimeout(() => early.abort(), 50);
      const err = await rejection(b.get('nar/abort-get.nar', { signal: early.signal }));
      expect(err.code).toBe('ABORTED');
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      proxy.onRequest = undefined;
    }

    const mid = new AbortController();
    const obj = await b.get('nar/abort-get.nar', { signal: mid.signal });
    const it = obj!.body[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    mid.abort();
    const err = await rejection(
      (async () => {
        for (;;) if ((await it.next()).done) return;
      })(),
    );
    expect(err.code).toBe('ABORTED');
  });

  it('an AbortSignal aborts a put (buffered, streamed and multipart), leaving no object', async () => {
    const b = open(proxy.endpoint);
    async function* slow(first: number): AsyncGenerator<Uint8Array> {
      yield pattern(first, 8);
      await new Promise((r) => setTimeout(r, 60_000));
      yield new Uint8Array(1);
    }
    for (const [key, first, size] of [
      ['nar/abort-buffered.nar', 1 * MiB, 2 * MiB],
      ['nar/abort-streamed.nar', 1 * MiB, 20 * MiB],
      ['nar/abort-multi.nar', 6 * MiB, undefined],
    ] as const) {
      proxy.clear();
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const started = Date.now();
      const err = await rejection(
        b.put(key, slow(first), {
          contentType: 'application/x-nix-nar',
          signal: ac.signal,
          ...(size !== undefined && { size }),
        }),
      );
      expect(err.code).toBe('ABORTED');
      expect(err.message).toContain(`s3://cache/${key}`);
      expect(Date.now() - started).toBeLessThan(5000);
      const puts = proxy.find('PUT', key);
      if (key === 'nar/abort-streamed.nar') {
        expect(puts[0]!.bodyBytes).toBeLessThan(20 * MiB);
      } else {
        expect(await b.head(key)).toBeUndefined();
      }
      if (key === 'nar/abort-buffered.nar') expect(puts).toHaveLength(0);
    }
    const pre = new AbortController();
    pre.abort();
    await expect(
      b.put('x', new Uint8Array(1), { contentType: 'x', signal: pre.signal }),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});

describe('s3ClientConfig', () => {
  it('maps the store URL to SDK settings', () => {
    const c = s3ClientConfig(parseStoreUrl('s3://cache?endpoint=http://127.0.0.1:9000&profile=up'));
    expect(c).toMatchObject({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      profile: 'up',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    expect(s3ClientConfig(parseStoreUrl('s3://cache?region=eu-west-2'))).toMatchObject({
      region: 'eu-west-2',
      forcePathStyle: false,
    });
    expect(
      s3ClientConfig(parseStoreUrl('s3://cache?endpoint=https://h&addressing-style=virtual')).forcePathStyle,
    ).toBe(false);
    expect(s3ClientConfig(parseStoreUrl('s3://cache?addressing-style=path')).forcePathStyle).toBe(true);
    expect(s3ClientConfig(parseStoreUrl('s3://my.cache')).forcePathStyle).toBe(true);
    const withCreds = s3ClientConfig(parseStoreUrl('s3://cache?profile=p'), {
      credentials: S3RVER_CREDENTIALS,
    });
    expect(withCreds.credentials).toEqual(S3RVER_CREDENTIALS);
    expect(withCreds.profile).toBeUndefined();
  });

  it('uses an injected client and leaves it open on close()', async () => {
    const client = new S3Client({
      ...s3ClientConfig(parseStoreUrl(s3ConfigFor(s3.endpoint, BUCKET).url)),
      credentials: S3RVER_CREDENTIALS,
    });
    const b = new S3Backend(parseStoreUrl(s3ConfigFor(s3.endpoint, BUCKET).url), { client });
    expect(b.client).toBe(client);
    await b.put('injected', new Uint8Array([1]), { contentType: 'application/octet-stream' });
    await b.close();
    const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'injected' }));
    expect(await res.Body?.transformToByteArray()).toEqual(new Uint8Array([1]));
    client.destroy();
  });
});
