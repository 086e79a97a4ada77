/**
 * The SigV4 signer (src/store/s3-sigv4.ts) of the direct requests (small PutObject, GetObject,
 * HeadObject: src/store/s3-direct.ts) against the SDK's own
 * signer (@smithy/signature-v4, what @aws-sdk/client-s3 signs with): the same request, headers and
 * time must give the same Authorization header. s3rver checks no signatures, so this is where a
 * signing mistake shows.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { amzDate, canonicalQuery, s3Path, signV4 } from '../../src/store/s3-sigv4.js';

/** The SDK's hash interface on node:crypto (HMAC when given a secret). */
class Sha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: string | Uint8Array) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | Uint8Array): void {
    this.#hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }
}

async function sdkAuthorization(
  method: string,
  path: string,
  headers: Record<string, string>,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  region: string,
  time: number,
  query: Record<string, string> = {},
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials,
    region,
    service: 's3',
    sha256: Sha256 as never,
    uriEscapePath: false,
    applyChecksum: true,
  });
  const signed = await signer.sign(
    {
      method,
      protocol: 'http:',
      hostname: headers.host!.split(':')[0]!,
      path,
      headers: { ...headers },
      query,
    } as never,
    { signingDate: new Date(time) },
  );
  return (signed as unknown as { headers: Record<string, string> }).headers;
}

describe('signV4 (direct PutObject, GetObject, HeadObject)', () => {
  const time = Date.UTC(2026, 11, 3, 12, 34, 56);
  const body = new TextEncoder().encode('StorePath: /nix/store/x\n');
  const payloadHash = createHash('sha256').update(body).digest('hex');

  const cases: {
    name: string;
    key: string;
    extra: Record<string, string>;
    sessionToken?: string;
    region: string;
  }[] = [
    {
      name: 'a narinfo',
      key: 'cache/abc.narinfo',
      extra: { 'content-type': 'text/x-nix-narinfo' },
      region: 'us-east-1',
    },
    {
      name: 'a NAR under a prefix, another region, storage class',
      key: 'cache/some prefix/nar/0a1b.nar.xz',
      extra: { 'content-type': 'application/x-nix-nar', 'x-amz-storage-class': 'STANDARD_IA' },
      region: 'eu-west-2',
    },
    {
      name: 'a conditional compressed write with a session token',
      key: "cache/odd (key)!*'~.ls",
      extra: {
        'content-type': 'application/json',
        'content-encoding': 'br',
        'if-match': '"0123abcd"',
        'if-none-match': '*',
      },
      sessionToken: 'FwoGZXIvYXdzEXAMPLE//token+with/slashes==',
      region: 'us-east-1',
    },
  ];

  for (const c of cases) {
    it(`signs ${c.name} exactly as the SDK does`, async () => {
      const credentials = {
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        ...(c.sessionToken !== undefined && { sessionToken: c.sessionToken }),
      };
      const path = s3Path(c.key);
      const headers: Record<string, string> = {
        ...c.extra,
        host: '127.0.0.1:9000',
        'content-length': String(body.length),
        'content-md5': createHash('md5').update(body).digest('base64'),
      };
      const sdkHeaders = await sdkAuthorization(
        'PUT',
        path,
        {
          ...headers,
          'x-amz-content-sha256': payloadHash,
        },
        credentials,
        c.region,
        time,
      );
      signV4({ method: 'PUT', path, headers, payloadHash }, credentials, c.region, 's3', time);
      expect(headers.authorization).toBe(sdkHeaders.authorization);
      expect(headers['x-amz-date']).toBe(sdkHeaders['x-amz-date']);
      if (c.sessionToken) expect(headers['x-amz-security-token']).toBe(c.sessionToken);
    });
  }

  for (const method of ['GET', 'HEAD'] as const) {
    it(`signs a ${method} (empty payload, a key with odd characters) exactly as the SDK does`, async () => {
      const credentials = {
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        sessionToken: 'FwoGZXIvYXdzEXAMPLE//token',
      };
      const path = s3Path("cache/some prefix/odd (key)!*'~.narinfo");
      const empty = createHash('sha256').digest('hex');
      const headers: Record<string, string> = { host: 's3.example.org' };
      const sdkHeaders = await sdkAuthorization(
        method,
        path,
        { ...headers, 'x-amz-content-sha256': empty },
        credentials,
        'eu-central-1',
        time,
      );
      signV4({ method, path, headers, payloadHash: empty }, credentials, 'eu-central-1', 's3', time);
      expect(headers.authorization).toBe(sdkHeaders.authorization);
    });
  }

  it('signs a listing (a query with odd characters) exactly as the SDK does', async () => {
    const credentials = {
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    };
    const query = {
      'list-type': '2',
      prefix: "some prefix/odd (key)!*'~ü",
      delimiter: '/',
      'continuation-token': '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=',
      'max-keys': '7',
    };
    const empty = createHash('sha256').digest('hex');
    const headers: Record<string, string> = { host: '127.0.0.1:9000' };
    const path = s3Path('cache');
    const sdkHeaders = await sdkAuthorization(
      'GET',
      path,
      { ...headers, 'x-amz-content-sha256': empty },
      credentials,
      'us-east-1',
      time,
      query,
    );
    const q = canonicalQuery(query);
    expect(q).toBe(
      'continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D&delimiter=%2F&list-type=2&max-keys=7&prefix=some%20prefix%2Fodd%20%28key%29%21%2A%27~%C3%BC',
    );
    signV4(
      { method: 'GET', path, query: q, headers, payloadHash: empty },
      credentials,
      'us-east-1',
      's3',
      time,
    );
    expect(headers.authorization).toBe(sdkHeaders.authorization);
  });

  it('encodes keys segment by segment, as S3 expects', () => {
    expect(s3Path('b/nar/x y+z.nar')).toBe('/b/nar/x%20y%2Bz.nar');
    expect(s3Path("b/a!'()*~._-")).toBe('/b/a%21%27%28%29%2A~._-');
    expect(amzDate(time)).toEqual({ dateTime: '20261203T123456Z', date: '20261203' });
    expect(amzDate(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toEqual({
      dateTime: '20261231T235959Z',
      date: '20261231',
    });
    expect(amzDate(Date.UTC(2027, 0, 1, 0, 0, 0, 1))).toEqual({
      dateTime: '20270101T000000Z',
      date: '20270101',
    });
  });
});
