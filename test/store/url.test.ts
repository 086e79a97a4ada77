/**
 * Store URL parsing as Nix does it (nix-formats.md §8), issue 10 items 2, 12 and 14: query values
 * are percent-decoded without turning `+` into a space, the first of a repeated parameter wins,
 * an IP address is not a bucket name, URL credentials never show in the config or in messages,
 * a scheme-less endpoint warns, and a compression nixcache cannot write is refused at parse time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NixcacheError } from '../../src/errors.js';
import { formatSecretKey, generateSecretKey } from '../../src/signing/keys.js';
import { parseStoreUrl, redactUrlCredentials } from '../../src/store/url.js';

function failure(url: string): NixcacheError {
  try {
    parseStoreUrl(url);
  } catch (e) {
    expect(e).toBeInstanceOf(NixcacheError);
    return e as NixcacheError;
  }
  throw new Error(`${url} parsed`);
}

describe('query decoding as Nix does it', () => {
  it('keeps + in secret-key values (a key file name or a key pasted by mistake)', () => {
    const c = parseStoreUrl('file:///tmp/c?secret-key=/etc/nix/a+b.secret');
    expect(c.secretKeyFiles).toEqual(['/etc/nix/a+b.secret']);
    // %2B and %20 are still decoded.
    expect(parseStoreUrl('file:///tmp/c?secret-key=/k%2Bx%20y').secretKeyFiles).toEqual(['/k+x y']);
  });

  it('a key pasted as secret-key= arrives intact, so the CLI can recognise and hide it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), (n) => {
        const text = formatSecretKey(generateSecretKey(`k-${n}`));
        expect(parseStoreUrl(`file:///tmp/c?secret-key=${text}`).secretKeyFiles).toEqual([text]);
      }),
      { numRuns: 40 },
    );
  });

  it('the first value of a repeated parameter wins, with a warning', () => {
    const c = parseStoreUrl('s3://cache?region=eu-west-1&region=us-west-2&compression=zstd&compression=xz');
    expect(c.region).toBe('eu-west-1');
    expect(c.compression).toBe('zstd');
    expect(c.warnings.join('\n')).toMatch(/'region' is given more than once; the first value is used/);
    expect(parseStoreUrl('file:///c?secret-key=/a&secret-key=/b').secretKeyFiles).toEqual(['/a']);
  });

  it('a bad %-escape is an error that does not echo the value', () => {
    const e = failure('file:///c?secret-key=name:AAAA%zzBBBB');
    expect(e.code).toBe('BAD_STORE_URL');
    expect(e.message).toMatch(/store parameter 'secret-key' has a bad %-escape/);
    expect(e.message).not.toContain('AAAA');
  });
});

describe('S3 bucket names', () => {
  it('an IP address is not a bucket name', () => {
    for (const url of ['s3://127.0.0.1', 's3://10.0.0.1/prefix?region=x']) {
      const e = failure(url);
      expect(e.message).toMatch(/cannot be an IP address.*endpoint=http:\/\//);
    }
    expect(parseStoreUrl('s3://cache.127.0.0.1.example').bucket).toBe('cache.127.0.0.1.example');
  });
});

describe('credentials in URLs', () => {
  it('https://user:pass@host: the config and location hold no credentials; the header carries them', () => {
    const c = parseStoreUrl('https://ci:hunter2%21@cache.example.org/nix?priority=30');
    expect(c.baseUrl).toBe('https://cache.example.org/nix');
    expect(JSON.stringify(c)).not.toContain('hunter2');
    expect(c.httpAuthorization?.()).toBe(`Basic ${Buffer.from('ci:hunter2!').toString('base64')}`);
  });

  it('an endpoint with user info is refused without echoing the password', () => {
    const e = failure('s3://cache?endpoint=http://minio:s3cr3tpass@127.0.0.1:9000');
    expect(e.message).toMatch(/'endpoint' must not hold a user name or password/);
    expect(`${e.message} ${JSON.stringify(e.data)}`).not.toContain('s3cr3tpass');
  });

  it('other URL errors do not echo credentials either', () => {
    for (const url of [
      's3://user:s3cr3tpass@bucket',
      'file://user:s3cr3tpass@relative',
      'ftp://user:s3cr3tpass@host',
      'https://user:s3cr3tpass@',
    ]) {
      const e = failure(url);
      expect(`${e.message} ${JSON.stringify(e.data)}`, url).not.toContain('s3cr3tpass');
    }
    expect(redactUrlCredentials('see https://u:p@h/x and s3://a')).toBe(
      'see https://[redacted]@h/x and s3://a',
    );
  });

  it('property: no password of an http(s) URL reaches the config, its warnings or an error', () => {
    const password = fc.stringMatching(/^[A-Za-z0-9._~!$'()*+,;-]{8,24}$/);
    fc.assert(
      fc.property(password, fc.constantFrom('https', 'http'), fc.boolean(), (pass, scheme, junk) => {
        const url = `${scheme}://user:${pass}@cache.example.org/p?${junk ? 'frob=1&priority=x' : 'priority=1'}`;
        let seen: string;
        try {
          const c = parseStoreUrl(url);
          seen = `${JSON.stringify(c)} ${c.warnings.join(' ')} ${c.baseUrl}`;
        } catch (e) {
          seen = `${(e as Error).message} ${JSON.stringify((e as NixcacheError).data)}`;
        }
        expect(seen).not.toContain(pass);
      }),
      { numRuns: 100 },
    );
  });
});

describe('endpoint and compression parameters', () => {
  it('a scheme-less endpoint works (https, as in Nix) but warns that http:// may be meant', () => {
    const c = parseStoreUrl('s3://cache?endpoint=127.0.0.1:4569');
    expect(c.endpoint).toBe('https://127.0.0.1:4569');
    expect(c.warnings.join('\n')).toMatch(
      /'endpoint' has no scheme.*write endpoint=http:\/\/127\.0\.0\.1:4569/,
    );
    expect(parseStoreUrl('s3://cache?endpoint=127.0.0.1:4569&scheme=http').warnings).toEqual([]);
    expect(parseStoreUrl('s3://cache?endpoint=http://127.0.0.1:4569').warnings).toEqual([]);
  });

  it('an unsupported compression or an out-of-range level is a BAD_STORE_URL naming the parameter', () => {
    expect(failure('file:///c?compression=lz4').message).toMatch(
      /store parameter 'compression': expected a compression nixcache can write/,
    );
    expect(failure('file:///c?compression=bogus').data.field).toBe('compression');
    expect(failure('file:///c?compression=xz&compression-level=12').message).toMatch(
      /'compression-level': expected -1 or 0\.\.9 for xz/,
    );
    expect(failure('file:///c?compression=zstd&compression-level=0').data.field).toBe('compression-level');
    expect(failure('file:///c?narinfo-compression=lzip').data.field).toBe('narinfo-compression');
    expect(parseStoreUrl('file:///c?compression=zstd&compression-level=19').compressionLevel).toBe(19);
    expect(parseStoreUrl('file:///c?compression-level=-1').compressionLevel).toBeUndefined();
  });
});
