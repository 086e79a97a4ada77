/**
 * Issue 10 items 4 and 5: nothing a cache serves makes nixcache hold more than a bounded amount of
 * memory. Small objects (narinfo, nix-cache-info, listings) are capped as received and as
 * decoded, whichever Content-Encoding they come with and whether fetch() or nixcache decodes it,
 * with a TOO_LARGE error that names the URL; the download stops at the cap. A NAR is decoded no
 * further than its narinfo's NarSize.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NixcacheError } from '../../src/errors.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { DEFAULT_MAX_SMALL_OBJECT_BYTES, openStore } from '../../src/store/index.js';
import { MiB, repeat, zstdZeros } from '../compression/bombs.js';

const HASH = 'syd87l2rxw8cbsxmxl853h0r6pdwhwjr';
const NARINFO = [
  `StorePath: /nix/store/${HASH}-curl-7.82.0-bin`,
  'URL: nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.zst',
  'Compression: zstd',
  'NarHash: sha256:1b4sb93wp679q4zx9k1ignby1yna3z7c4c2ri3wphylbc2dwsys0',
  'NarSize: 1000',
  '',
].join('\n');

let server: Server;
let base: string;
/** Bytes the server managed to send per path (an endless body stops when the client hangs up). */
const sent = new Map<string, number>();
const closed = new Set<string>();

function endless(res: ServerResponse, path: string): void {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  res.writeHead(200, { 'content-type': 'text/x-nix-narinfo' });
  res.on('close', () => closed.add(path));
  const write = (): void => {
    while (!res.destroyed) {
      sent.set(path, (sent.get(path) ?? 0) + chunk.length);
      if (!res.write(chunk)) {
        res.once('drain', write);
        return;
      }
    }
  };
  write();
}

beforeAll(async () => {
  const gzipBomb = repeat(gzipSync(Buffer.alloc(16 * MiB), { level: 9 }), 64); // 1 GiB
  const brBomb = brotliCompressSync(Buffer.alloc(256 * MiB), {
    params: { [constants.BROTLI_PARAM_QUALITY]: 1 },
  });
  const zstdBomb = zstdZeros(2 * 1024 * MiB);
  server = createServer((req, res) => {
    const path = (req.url ?? '/').slice(1);
    const encoded = (encoding: string, body: Uint8Array) => {
      res.on('close', () => closed.add(path));
      res.writeHead(200, { 'content-type': 'text/x-nix-narinfo', 'content-encoding': encoding });
      res.end(body);
    };
    if (path === `endless/${HASH}.narinfo` || path === 'endless/nix-cache-info') return endless(res, path);
    if (path === `gzip/${HASH}.narinfo`) return encoded('gzip', gzipBomb);
    if (path === `br/${HASH}.narinfo`) return encoded('br', brBomb);
    if (path === `zstd/${HASH}.narinfo`) return encoded('zstd', zstdBomb);
    if (/^bucket\/?\?/.test(path) && path.includes('list-type=2')) {
      // An S3 endpoint whose ListObjectsV2 page never ends.
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.write('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bucket</Name>');
      const chunk = Buffer.from('<Contents><Key>x</Key></Contents>'.repeat(2000));
      res.on('close', () => closed.add('s3-list'));
      const write = (): void => {
        while (!res.destroyed) {
          sent.set('s3-list', (sent.get('s3-list') ?? 0) + chunk.length);
          if (!res.write(chunk)) {
            res.once('drain', write);
            return;
          }
        }
      };
      return write();
    }
    if (path === `ok/${HASH}.narinfo`) return encoded('gzip', gzipSync(NARINFO));
    const sized = /^sized\/(\d+)(-chunked|-gzip)?\/obj$/.exec(path);
    if (sized) {
      const size = Number(sized[1]);
      const body = Buffer.alloc(size, 'n');
      if (sized[2] === '-gzip') return encoded('gzip', gzipSync(body));
      res.on('close', () => closed.add(path));
      if (sized[2] === '-chunked') {
        res.writeHead(200);
        for (let at = 0; at < size; at += 1000) res.write(body.subarray(at, at + 1000));
        return res.end();
      }
      res.writeHead(200, { 'content-length': String(size) });
      return res.end(body);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function failure(promise: Promise<unknown>): Promise<NixcacheError> {
  const e = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(NixcacheError);
  return e as NixcacheError;
}

describe('small objects are capped (item 5)', () => {
  it('the default cap is 8 MiB', () => {
    expect(DEFAULT_MAX_SMALL_OBJECT_BYTES).toBe(8 * MiB);
  });

  it('an endless narinfo over HTTP fails with TOO_LARGE naming the URL, and the download stops', async () => {
    const store = await openStore(`${base}/endless`);
    const e = await failure(store.getNarInfo(HASH));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toContain(`${base}/endless/${HASH}.narinfo`);
    expect(e.message).toContain(String(8 * MiB));
    await expect.poll(() => closed.has(`endless/${HASH}.narinfo`)).toBe(true);
    // The server is stopped by the hang-up, not after gigabytes.
    expect(sent.get(`endless/${HASH}.narinfo`)!).toBeLessThan(64 * MiB);
  });

  it('an endless nix-cache-info fails the same way, with a configured cap', async () => {
    const store = await openStore(`${base}/endless`, { maxSmallObjectBytes: 100_000 });
    const e = await failure(store.getCacheInfo());
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toMatch(/endless\/nix-cache-info.*100000 bytes/);
  });

  for (const encoding of ['gzip', 'br', 'zstd']) {
    it(`a narinfo sent as a Content-Encoding: ${encoding} bomb fails with TOO_LARGE, not a V8 string error`, async () => {
      const store = await openStore(`${base}/${encoding}`);
      const e = await failure(store.getNarInfo(HASH));
      expect(e.code).toBe('TOO_LARGE');
      expect(e.message).toContain(`${base}/${encoding}/${HASH}.narinfo`);
      await expect.poll(() => closed.has(`${encoding}/${HASH}.narinfo`)).toBe(true);
    });
  }

  it('property: a small object of any size and framing is read exactly up to the cap, refused above it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 40_000 }),
        fc.nat({ max: 40_000 }),
        fc.constantFrom('', '-chunked', '-gzip'),
        async (size, cap, framing) => {
          const store = await openStore(`${base}/sized/${size}${framing}`, { maxSmallObjectBytes: cap });
          const got = await store.getFile('obj').then(
            (bytes) => ({ bytes }),
            (error: unknown) => ({ error }),
          );
          if (size <= cap) {
            expect('bytes' in got && got.bytes?.length).toBe(size);
          } else {
            expect('error' in got && (got.error as NixcacheError).code).toBe('TOO_LARGE');
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('file://: reads of a file of any size are exact up to the cap, refused above it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nixcache-sized-'));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 200_000 }), fc.nat({ max: 200_000 }), async (size, cap) => {
        writeFileSync(join(root, 'obj'), Buffer.alloc(size, 'f'));
        const store = await openStore(`file://${root}`, { maxSmallObjectBytes: cap });
        const got = await store.getFile('obj').then(
          (bytes) => bytes?.length,
          (e: NixcacheError) => e.code,
        );
        expect(got).toBe(size <= cap ? size : 'TOO_LARGE');
      }),
      { numRuns: 40 },
    );
  });

  it('s3: an endless ListObjectsV2 response (read whole by the SDK) fails with TOO_LARGE', async () => {
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    const store = await openStore(`s3://bucket?endpoint=${base}&region=us-east-1`, { onWarning: () => {} });
    try {
      const e = await failure(
        (async () => {
          for await (const _ of store.listNarInfos()) {
            // nothing
          }
        })(),
      );
      expect(e.code).toBe('TOO_LARGE');
      expect(e.message).toContain(
        `${base}: ListObjectsV2 response is larger than the limit of ${8 * MiB} bytes`,
      );
      await expect.poll(() => closed.has('s3-list')).toBe(true);
      expect(sent.get('s3-list')!).toBeLessThan(64 * MiB);
    } finally {
      await store.close();
    }
  });

  it('a genuine gzip-encoded narinfo still reads', async () => {
    const store = await openStore(`${base}/ok`);
    expect((await store.getNarInfo(HASH))?.narSize).toBe(1000);
  });

  it('file://: a 9 MiB narinfo and a listing over the cap fail with TOO_LARGE naming the file', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nixcache-limits-'));
    writeFileSync(join(root, `${HASH}.narinfo`), Buffer.alloc(9 * MiB, 'x'));
    const store = await openStore(`file://${root}`);
    const e = await failure(store.getNarInfo(HASH));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toContain(`file://${root}/${HASH}.narinfo`);
    writeFileSync(join(root, `${HASH}.ls`), Buffer.alloc(2000, ' '));
    const small = await openStore(`file://${root}`, { maxSmallObjectBytes: 1000 });
    expect((await failure(small.getFile(`${HASH}.ls`))).code).toBe('TOO_LARGE');
  });
});

describe('a NAR is decoded no further than NarSize (item 4)', () => {
  it('a narinfo claiming NarSize 1000 over 2 GiB of zstd zeros is a NarSize mismatch, decided at once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nixcache-bomb-'));
    mkdirSync(join(root, 'nar'));
    writeFileSync(
      join(root, 'nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.zst'),
      zstdZeros(2 * 1024 * MiB),
    );
    const store = await openStore(`file://${root}`);
    const info = parseNarInfo(NARINFO);
    const before = process.memoryUsage.rss();
    const started = Date.now();
    const e = await failure(
      (async () => {
        for await (const _ of store.getNar(info)) {
          // drain
        }
      })(),
    );
    expect(e.code).toBe('INTEGRITY');
    expect(e.message).toMatch(/NarSize mismatch.*expected 1000, got more than 1000/);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(process.memoryUsage.rss() - before).toBeLessThan(64 * MiB);
  });

  it('a valid 2 GiB zstd NAR streams through and verifies (it was "data is too long")', async () => {
    // A NAR of one 2 GiB + 8 byte file of zeros, as a zstd frame of raw and RLE blocks.
    const str = (text: string) => {
      const b = Buffer.from(text);
      const out = Buffer.alloc(8 + Math.ceil(b.length / 8) * 8);
      out.writeBigUInt64LE(BigInt(b.length));
      b.copy(out, 8);
      return out;
    };
    const size = 2 ** 31 + 8;
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(size));
    const head = Buffer.concat([...['nix-archive-1', '(', 'type', 'regular', 'contents'].map(str), length]);
    const tail = str(')');
    const raw = (bytes: Buffer, last: boolean) => {
      const h = (bytes.length << 3) | (last ? 1 : 0);
      return Buffer.concat([Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]), bytes]);
    };
    const zeros = zstdZeros(size).subarray(6); // its RLE blocks, the last one flagged last
    zeros[zeros.length - 4]! &= 0xfe;
    const frame = Buffer.concat([
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3]),
      raw(head, false),
      zeros,
      raw(tail, true),
    ]);
    const root = mkdtempSync(join(tmpdir(), 'nixcache-2gib-'));
    mkdirSync(join(root, 'nar'));
    writeFileSync(join(root, 'nar/big.nar.zst'), frame);
    const info = parseNarInfo(
      `StorePath: /nix/store/${HASH}-big\nURL: nar/big.nar.zst\nCompression: zstd\n` +
        'NarHash: sha256:1q1jwbsmsf750zc0smzvvy2z34j06544bddlsdkw8b09qkw493gn\nNarSize: 2147483768\n',
    );
    const store = await openStore(`file://${root}`);
    let total = 0;
    for await (const chunk of store.getNar(info)) total += chunk.length;
    expect(total).toBe(2147483768);
  }, 120_000);
});
