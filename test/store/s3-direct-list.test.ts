/**
 * The direct ListObjectsV2 of the s3:// driver (src/store/s3-direct.ts, s3-list-xml.ts), against
 * s3rver behind the recording proxy: listings equal the SDK's, page by page, for keys XML must
 * escape; an answer the direct path cannot use (a page it is not sure of, a server error, a
 * refusal, a missing bucket) is sent again through the SDK, so the outcome never changes. A
 * listing (of objects or of multipart uploads) that would end early or never fails instead. And
 * the credentials direct requests sign with: the environment's keys only when no profile is named.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Backend, type S3BackendOptions } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { sentDirect as direct, type ProxiedS3, startProxiedS3 } from '../helpers/proxied-s3.js';
import { type FaultHook, faults, type LoopbackProxy, type RecordedRequest } from '../helpers/proxy.js';
import { rejection } from '../helpers/rejection.js';
import { s3ConfigFor } from '../helpers/s3rver.js';

const BUCKET = 'direct-list';
let fixture: ProxiedS3;
let proxy: LoopbackProxy;
const backends: S3Backend[] = [];
/** Keys XML must escape, a space, a plus, non-ASCII, and a nar/ subtree. */
const KEYS = [
  'a&b.narinfo',
  '<lt>.narinfo',
  'quote"\'.narinfo',
  'sp ace+plus.narinfo',
  'ümlaut€😀.narinfo',
  'nix-cache-info',
  'nar/x&y.nar.xz',
  'nar/z.nar.xz',
  'pre/fix/deep.narinfo',
].sort();

beforeAll(async () => {
  fixture = await startProxiedS3([BUCKET]);
  proxy = fixture.proxy;
  const b = open();
  for (const key of KEYS) await b.put(key, new TextEncoder().encode(key), { contentType: 'text/plain' });
});

afterAll(async () => {
  for (const b of backends) await b.close();
  await fixture?.stop();
});

function open(options: S3BackendOptions = {}, bucket = BUCKET): S3Backend {
  return fixture.open(bucket, options);
}

const isList = (r: RecordedRequest) => r.method === 'GET' && r.url.includes('list-type=2');

/** What the listing requests saw: whether each went direct, and its status. */
const lists = () => proxy.requests.filter(isList).map((r) => [direct(r) ? 'direct' : 'sdk', r.status]);

/**
 * Lists the bucket twice with `hook` deciding faults (each listing must still give every key)
 * and returns what the listing requests saw.
 */
async function listTwiceWith(b: S3Backend, hook: FaultHook): Promise<(string | number | undefined)[][]> {
  proxy.onRequest = hook;
  proxy.clear();
  try {
    expect(await keys(b)).toEqual(KEYS);
    expect(await keys(b)).toEqual(KEYS);
  } finally {
    proxy.onRequest = undefined;
  }
  return lists();
}

async function keys(b: S3Backend, prefix = '', recursive = true): Promise<string[]> {
  const out: string[] = [];
  for await (const k of b.list(prefix, { recursive })) out.push(k);
  return out;
}

describe('S3Backend direct ListObjectsV2', () => {
  it('lists what the SDK lists, one direct request per page', async () => {
    const sdk = open({ directRequests: false, listPageSize: 2 });
    const b = open({ listPageSize: 2 });
    for (const [prefix, recursive] of [
      ['', true],
      ['', false],
      ['nar/', true],
      ['pre/', false],
      ['pre/', true],
      ['no-such-prefix', true],
    ] as const) {
      const theirs = await keys(sdk, prefix, recursive);
      proxy.clear();
      const ours = await keys(b, prefix, recursive);
      expect(ours, `${prefix} ${recursive}`).toEqual(theirs);
      // Pages of 2 keys (and for a delimiter listing, common prefixes count in a page).
      const pages = lists();
      expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(ours.length / 2));
      expect(pages.every(([how, status]) => how === 'direct' && status === 200)).toBe(true);
    }
    expect(await keys(b)).toEqual(KEYS);
    expect(await keys(b, '', false)).toEqual(KEYS.filter((k) => !k.includes('/')));
  });

  it('listObjects (gc, repair) gives what the SDK gives, sizes and dates too, one direct request per page', async () => {
    const sdk = open({ directRequests: false });
    const b = open({ listPageSize: 2 });
    const objects = async (s: S3Backend, prefix: string, recursive: boolean) => {
      const out: unknown[] = [];
      for await (const o of s.listObjects(prefix, { recursive })) out.push(o);
      return out;
    };
    for (const [prefix, recursive] of [
      ['', true],
      ['', false],
      ['nar/', true],
    ] as const) {
      const theirs = await objects(sdk, prefix, recursive);
      proxy.clear();
      const ours = await objects(b, prefix, recursive);
      expect(ours, `${prefix} ${recursive}`).toEqual(theirs);
      expect(ours.length).toBeGreaterThan(0);
      const pages = lists();
      expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(ours.length / 2));
      expect(pages.every(([how, status]) => how === 'direct' && status === 200)).toBe(true);
    }
    const all = (await objects(b, '', true)) as { key: string; size: number; lastModified: number }[];
    expect(all.map((o) => o.key)).toEqual(KEYS);
    expect(all.map((o) => o.size)).toEqual(KEYS.map((k) => new TextEncoder().encode(k).length));
    expect(all.every((o) => Math.abs(Date.now() - o.lastModified) < 3_600_000)).toBe(true);

    // A page whose dates the reader is not sure of goes to the SDK, which reads the true page.
    proxy.onRequest = (r) =>
      isList(r) && direct(r)
        ? {
            kind: 'status',
            status: 200,
            body:
              '<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a.narinfo</Key>' +
              '<LastModified>yesterday</LastModified><Size>1</Size></Contents></ListBucketResult>',
          }
        : undefined;
    proxy.clear();
    try {
      expect(await objects(b, '', true)).toEqual(all);
    } finally {
      proxy.onRequest = undefined;
    }
    expect(lists()[0]).toEqual(['direct', 200]);
    expect(lists()[1]).toEqual(['sdk', 200]);
  });

  it('a prefixed store lists keys relative to its prefix', async () => {
    const b = fixture.open(BUCKET, {}, 'pre');
    proxy.clear();
    expect(await keys(b)).toEqual(['fix/deep.narinfo']);
    expect(lists()).toEqual([['direct', 200]]);
  });

  it('a page the reader is not sure of is sent again through the SDK; the direct path stays on', async () => {
    let n = 0;
    const cdata =
      '<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key><![CDATA[x]]></Key></Contents></ListBucketResult>';
    const seen = await listTwiceWith(open(), (r) =>
      isList(r) && n++ === 0 ? { kind: 'status', status: 200, body: cdata } : undefined,
    );
    expect(seen).toEqual([
      ['direct', 200],
      ['sdk', 200],
      ['direct', 200],
    ]);
  });

  it('a 503 is sent again through the SDK after a pause; the direct path stays on', async () => {
    let n = 0;
    const seen = await listTwiceWith(open(), (r) => (isList(r) && n++ === 0 ? faults.slowDown : undefined));
    expect(seen).toEqual([
      ['direct', 503],
      ['sdk', 200],
      ['direct', 200],
    ]);
  });

  it('a refused signature gives the SDK’s answer and turns the direct path off', async () => {
    const refusal = '<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>';
    const seen = await listTwiceWith(open(), (r) =>
      isList(r) && direct(r) ? { kind: 'status', status: 403, body: refusal } : undefined,
    );
    expect(seen).toEqual([
      ['direct', 403],
      ['sdk', 200],
      ['sdk', 200],
    ]);
  });

  it('a page that says more follow without a token, or repeats its token, fails with NETWORK', async () => {
    const b = open();
    const page = (token?: string) =>
      '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>direct-list</Name><Prefix></Prefix>' +
      '<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>' +
      '<Contents><Key>a.narinfo</Key><Size>1</Size><LastModified>2026-12-03T10:00:00.000Z</LastModified></Contents>' +
      (token ? `<NextContinuationToken>${token}</NextContinuationToken>` : '') +
      '</ListBucketResult>';
    for (const token of [undefined, 'same-token']) {
      proxy.onRequest = (r) => (isList(r) ? { kind: 'status', status: 200, body: page(token) } : undefined);
      try {
        const drain = async (objects: AsyncIterable<unknown>) => {
          for await (const _ of objects) {
            // nothing: the listing must fail
          }
        };
        for (const listing of [() => keys(b), () => drain(b.listObjects(''))]) {
          const err = await rejection(listing());
          expect(err.code).toBe('NETWORK');
          expect(err.message).toMatch(
            token ? /gave back the continuation token/ : /gives no continuation token/,
          );
          expect(err.message).toContain('s3://direct-list/');
        }
      } finally {
        proxy.onRequest = undefined;
      }
    }
  });

  it('multipart-upload listings follow their markers, and fail with NETWORK on a page that would end them early or never', async () => {
    const b = open();
    const isUploads = (r: RecordedRequest) => r.method === 'GET' && /\?(.*&)?uploads(=|&|$)/.test(r.url);
    const upload = (key: string, id: string) =>
      `<Upload><Key>${key}</Key><UploadId>${id}</UploadId><Initiated>2026-12-01T00:00:00.000Z</Initiated></Upload>`;
    const page = (body: string, truncated: boolean, next?: [string, string]) =>
      `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${BUCKET}</Bucket>` +
      `<IsTruncated>${truncated}</IsTruncated>${body}` +
      (next
        ? `<NextKeyMarker>${next[0]}</NextKeyMarker><NextUploadIdMarker>${next[1]}</NextUploadIdMarker>`
        : '') +
      '</ListMultipartUploadsResult>';
    const list = async () => {
      const out: string[] = [];
      for await (const u of b.listPendingUploads()) out.push(`${u.key} ${u.uploadId}`);
      return out;
    };
    // Two pages: the second is asked for with both markers of the first.
    const asked: string[] = [];
    proxy.onRequest = (r) => {
      if (!isUploads(r)) return undefined;
      asked.push(r.url);
      const first = !r.url.includes('key-marker=');
      return {
        kind: 'status',
        status: 200,
        body: first
          ? page(upload('a', '1') + upload('b', '2'), true, ['b', '2'])
          : page(upload('b', '3'), false),
      };
    };
    try {
      expect(await list()).toEqual(['a 1', 'b 2', 'b 3']);
      expect(asked).toHaveLength(2);
      expect(asked[1]).toMatch(/key-marker=b(&|$)/);
      expect(asked[1]).toMatch(/upload-id-marker=2(&|$)/);
      // Truncated without a key marker, and truncated with the markers it was asked with: after
      // five such pages the proxy ends the listing, so a driver that loops does not hang the test.
      for (const next of [undefined, ['b', '2'] as [string, string]]) {
        let pages = 0;
        proxy.onRequest = (r) => {
          if (!isUploads(r)) return undefined;
          const body =
            ++pages > 5
              ? page('', false)
              : r.url.includes('key-marker=')
                ? page('', true, next)
                : page(upload('b', '2'), true, next);
          return { kind: 'status', status: 200, body };
        };
        const err = await rejection(list());
        expect(err.code).toBe('NETWORK');
        expect(err.message).toMatch(next ? /gave back the markers it was asked with/ : /gives no key marker/);
        expect(err.message).toContain(`s3://${BUCKET}`);
      }
    } finally {
      proxy.onRequest = undefined;
    }
  });
  it('AccessDenied (credentials that may not list) gives the SDK’s error; the direct path stays on', async () => {
    const b = open();
    proxy.onRequest = (r) =>
      isList(r)
        ? {
            kind: 'status',
            status: 403,
            body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
          }
        : undefined;
    proxy.clear();
    try {
      const err = await rejection(keys(b));
      expect(err.message).toContain('AccessDenied');
    } finally {
      proxy.onRequest = undefined;
    }
    expect(lists()[0]).toEqual(['direct', 403]);
    expect(
      lists()
        .slice(1)
        .every(([how]) => how === 'sdk'),
    ).toBe(true);
    proxy.clear();
    expect(await b.head('a&b.narinfo')).toBeDefined();
    expect(proxy.requests.map((r) => [r.method, direct(r) ? 'direct' : 'sdk'])).toEqual([['HEAD', 'direct']]);
  });

  it('a missing bucket fails with the SDK’s NOT_FOUND; the direct path stays on', async () => {
    const err = await rejection(keys(open({}, 'no-such-bucket')));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('NoSuchBucket');
  });
});

describe('the credentials of direct requests', () => {
  const saved = { ...process.env };
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nixcache-s3-creds-'));
    await writeFile(
      join(dir, 'credentials'),
      '[named]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n',
    );
    await writeFile(join(dir, 'config'), '');
  });

  afterAll(async () => {
    process.env = saved;
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * The access key id of the request a HEAD sent (s3rver refuses unknown key ids with a 403,
   * which a HEAD takes for absence, so the SDK never sends it again).
   */
  async function signedWith(url: string): Promise<string[]> {
    const b = new S3Backend(parseStoreUrl(url), {});
    backends.push(b);
    proxy.clear();
    await b.head('a&b.narinfo');
    await b.close();
    return proxy.requests.map((r) => {
      const m = /Credential=([^/]+)\//.exec(String(r.headers.authorization));
      return `${direct(r) ? 'direct' : 'sdk'} ${m?.[1]}`;
    });
  }

  it('are the environment’s keys when no profile is named, the profile’s otherwise', async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIDENV';
    process.env.AWS_SECRET_ACCESS_KEY = 'env-secret';
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
    process.env.AWS_CONFIG_FILE = join(dir, 'config');
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
    const { url } = s3ConfigFor(proxy.endpoint, BUCKET);
    expect(await signedWith(url)).toEqual(['direct AKIDENV']);
    // profile= in the URL, or AWS_PROFILE: the SDK's chain finds the profile, as it would alone.
    expect(await signedWith(`${url}&profile=named`)).toEqual(['direct AKIDPROFILE']);
    process.env.AWS_PROFILE = 'named';
    expect(await signedWith(url)).toEqual(['direct AKIDPROFILE']);
    process.env.AWS_SESSION_TOKEN = 'env-token';
    delete process.env.AWS_PROFILE;
    expect(await signedWith(url)).toEqual(['direct AKIDENV']);
    expect(proxy.requests[0]?.headers['x-amz-security-token']).toBe('env-token');
  });
});
