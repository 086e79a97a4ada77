/**
 * The reader of ListObjectsV2 pages for direct listings (src/store/s3-list-xml.ts): it reads
 * S3's answers exactly (keys with any character, escaped as S3 escapes them or as character
 * references) with each object's Size and LastModified when asked, and gives up (undefined:
 * the SDK then sends the request) on anything it is not sure of, instead of guessing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeXmlText, parseListPage, parseRfc3339 } from '../../src/store/s3-list-xml.js';

/** A page as S3 writes it (the shape of AWS's documented example answer). */
function page(
  keys: readonly string[],
  opts: { truncated?: boolean; token?: string; escape?: (s: string) => string } = {},
) {
  const esc = opts.escape ?? escapeXml;
  const contents = keys
    .map(
      (k) =>
        `<Contents><Key>${esc(k)}</Key><LastModified>2026-12-03T10:00:00.000Z</LastModified>` +
        '<ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag><Size>857</Size>' +
        '<StorageClass>STANDARD</StorageClass></Contents>',
    )
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix></Prefix>' +
    `<KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>` +
    `<IsTruncated>${opts.truncated ? 'true' : 'false'}</IsTruncated>${contents}` +
    '<CommonPrefixes><Prefix>nar/</Prefix></CommonPrefixes>' +
    (opts.token !== undefined ? `<NextContinuationToken>${esc(opts.token)}</NextContinuationToken>` : '') +
    '</ListBucketResult>'
  );
}

function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`,
  );
}

/** Every character as a character reference, decimal or hex. */
function escapeAll(s: string): string {
  return [...s]
    .map((c, i) => (i % 2 ? `&#${c.codePointAt(0)};` : `&#x${c.codePointAt(0)!.toString(16)};`))
    .join('');
}

/** Characters S3 keys may hold that XML 1.0 text can carry (no NUL, no lone surrogates). */
const keyChar = fc
  .oneof(
    fc.constantFrom('&', '<', '>', '"', "'", ' ', '/', '+', '%', ';', '#', '\t', 'é', '€', '😀'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
  )
  .filter((c) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(c));
const key = fc.array(keyChar, { minLength: 1, maxLength: 40 }).map((cs) => cs.join(''));

describe('parseListPage', () => {
  it('reads back any keys, in order, escaped by name or by character reference', () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 12 }), fc.boolean(), (keys, byReference) => {
        const parsed = parseListPage(page(keys, byReference ? { escape: escapeAll } : {}));
        expect(parsed).toEqual({ keys, truncated: false });
      }),
      { numRuns: 300 },
    );
  });

  it('a truncated page gives its continuation token', () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 4 }), key, (keys, token) => {
        expect(parseListPage(page(keys, { truncated: true, token }))).toEqual({
          keys,
          truncated: true,
          nextToken: token,
        });
      }),
    );
  });

  it('an empty listing has no keys', () => {
    expect(parseListPage(page([]))).toEqual({ keys: [], truncated: false });
  });

  it.each([
    ['not a listing', '<Error><Code>NoSuchBucket</Code></Error>'],
    ['an unfinished document', page(['a']).slice(0, -5)],
    ['no IsTruncated', page(['a']).replace('<IsTruncated>false</IsTruncated>', '')],
    ['an IsTruncated that is not true or false', page(['a']).replace('>false<', '>yes<')],
    ['a truncated page without a token', page(['a'], { truncated: true })],
    [
      'a truncated page with an empty token',
      page(['a'], { truncated: true }).replace(
        '</ListBucketResult>',
        '<NextContinuationToken></NextContinuationToken></ListBucketResult>',
      ),
    ],
    ['Contents without a Key', page(['a']).replace('<Key>a</Key>', '')],
    ['a Key holding markup', page(['a']).replace('<Key>a</Key>', '<Key>a<b/></Key>')],
    ['an unclosed Contents', page(['a']).replace('</Contents>', '')],
    ['CDATA', page(['a']).replace('<Key>a</Key>', '<Key><![CDATA[a]]></Key>')],
    ['a comment', page(['a']).replace('<Name>', '<!-- x --><Name>')],
    ['a doctype', `<!DOCTYPE x [<!ENTITY e "b">]>${page(['&e;'], { escape: (s) => s })}`],
    ['an unknown entity', page(['x&nbsp;y'], { escape: (s) => s })],
    ['a bare ampersand', page(['x&y'], { escape: (s) => s })],
    ['a reference to NUL', page(['x&#0;y'], { escape: (s) => s })],
    ['a reference to a surrogate', page(['x&#xd800;y'], { escape: (s) => s })],
    ['a reference beyond Unicode', page(['x&#x110000;y'], { escape: (s) => s })],
    ['a decimal reference with hex digits', page(['x&#1f;y'], { escape: (s) => s })],
  ])('gives up on %s', (_, xml) => {
    expect(parseListPage(xml)).toBeUndefined();
  });

  it('with details, gives each object’s Size and LastModified', () => {
    const xml = page(['a', 'b']).replace('<Size>857</Size>', '<Size>0</Size>');
    expect(parseListPage(xml, true)).toEqual({
      keys: ['a', 'b'],
      objects: [
        { key: 'a', size: 0, lastModified: Date.UTC(2026, 11, 3, 10) },
        { key: 'b', size: 857, lastModified: Date.UTC(2026, 11, 3, 10) },
      ],
      truncated: false,
    });
    // Without details the same page needs neither.
    expect(parseListPage(xml.replace(/<Size>[^<]*<\/Size>/g, ''))).toEqual({
      keys: ['a', 'b'],
      truncated: false,
    });
  });

  it.each([
    ['no Size', (x: string) => x.replace('<Size>857</Size>', '')],
    ['a negative Size', (x: string) => x.replace('<Size>857</Size>', '<Size>-1</Size>')],
    ['a fractional Size', (x: string) => x.replace('<Size>857</Size>', '<Size>8.5</Size>')],
    ['an empty Size', (x: string) => x.replace('<Size>857</Size>', '<Size></Size>')],
    ['a Size beyond 2^53', (x: string) => x.replace('<Size>857</Size>', '<Size>9007199254740993</Size>')],
    ['no LastModified', (x: string) => x.replace(/<LastModified>[^<]*<\/LastModified>/, '')],
    [
      'a LastModified in another format',
      (x: string) => x.replace('2026-12-03T10:00:00.000Z', 'Thu, 03 Dec 2026 10:00:00 GMT'),
    ],
    ['a LastModified of 31 February', (x: string) => x.replace('2026-12-03', '2026-02-31')],
  ])('with details, gives up on %s', (_, edit) => {
    const xml = edit(page(['a']));
    expect(parseListPage(xml, true)).toBeUndefined();
  });
});

describe('parseListPage on anything', () => {
  it('never throws: a page cut, spliced or sprinkled with markup gives a page or undefined', () => {
    const base = page(['a&b', 'c', 'nar/d'], { truncated: true, token: 't&1' });
    const bits = fc.constantFrom(
      '<',
      '>',
      '&',
      ';',
      '&#x',
      '&amp',
      '</Contents>',
      '<Contents>',
      '<Size>',
      '</Size>',
      '<LastModified>',
      '<![CDATA[',
      '<!--',
      'true',
      '-1',
      '9'.repeat(20),
      '\u0000',
      '\ud800',
    );
    fc.assert(
      fc.property(
        fc.nat({ max: base.length }),
        fc.nat({ max: base.length }),
        fc.array(bits, { maxLength: 4 }),
        fc.boolean(),
        (at, cut, inserted, details) => {
          const xml =
            base.slice(0, at) + inserted.join('') + base.slice(Math.min(base.length, at + (cut % 40)));
          const out = parseListPage(xml, details);
          if (out !== undefined) {
            expect(Array.isArray(out.keys)).toBe(true);
            if (details) expect(out.objects?.length).toBe(out.keys.length);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('parseRfc3339', () => {
  it('reads any instant as toISOString writes it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) }),
        (ms) => {
          expect(parseRfc3339(new Date(ms).toISOString())).toBe(ms);
        },
      ),
    );
  });

  it.each([
    ['2026-12-03T10:00:00Z', Date.UTC(2026, 11, 3, 10)],
    ['2026-12-03T10:00:00.5Z', Date.UTC(2026, 11, 3, 10, 0, 0, 500)],
    ['2026-12-03T10:00:00.123456789Z', Date.UTC(2026, 11, 3, 10, 0, 0, 123)],
    ['2026-12-03T10:00:00.99999Z', Date.UTC(2026, 11, 3, 10, 0, 0, 999)],
    ['2026-12-03T10:00:00.700Z', Date.UTC(2026, 11, 3, 10, 0, 0, 700)],
    ['2026-12-03T12:30:00+02:30', Date.UTC(2026, 11, 3, 10)],
    ['2026-12-03T05:00:00-05:00', Date.UTC(2026, 11, 3, 10)],
    // Date.UTC reads a year below 100 as 19xx.
    ['0050-01-01T00:00:00Z', new Date(0).setUTCFullYear(50, 0, 1)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
  ])('%s', (text, ms) => {
    expect(parseRfc3339(text)).toBe(ms);
  });

  it.each([
    '2026-02-29T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-12-03T24:00:00Z',
    '2026-12-03T10:60:00Z',
    '2026-12-03T10:00:60Z',
    '2026-12-03T10:00:00',
    '2026-12-03 10:00:00Z',
    '2026-12-03T10:00:00+24:00',
    '2026-12-03T10:00:00.Z',
    '2026-12-03T10:00:00.1234567890Z',
    ' 2026-12-03T10:00:00Z',
  ])('refuses %s', (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });
});

describe('decodeXmlText', () => {
  it('replaces the five named entities and character references, nothing else', () => {
    expect(decodeXmlText('a &amp; b &lt;c&gt; &quot;d&apos; &#65;&#x42;&#x1F600;')).toBe(
      'a & b <c> "d\' AB😀',
    );
    expect(decodeXmlText('&amp;amp;')).toBe('&amp;');
    expect(decodeXmlText('plain')).toBe('plain');
    expect(decodeXmlText('&copy;')).toBeUndefined();
    expect(decodeXmlText('a & b')).toBeUndefined();
    expect(decodeXmlText('&amp')).toBeUndefined();
  });
});
