import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatHash,
  formatNarInfo,
  type NarInfo,
  NixcacheError,
  narInfoFingerprint,
  parseHash,
  parseNarInfo,
  renderNarInfo,
} from '../../src/index.js';
import { arbitraryNarInfo } from '../helpers/arbitraries.js';
import vectors from '../vectors/signatures.json' with { type: 'json' };

const canonical = vectors.canonical.text;

function replaceLine(text: string, key: string, line: string | null): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`${key}: `));
  if (line === null) lines.splice(i, 1);
  else lines[i] = line;
  return lines.join('\n');
}

describe('narinfo', () => {
  it('parses the canonical Nix example and writes it back exactly (nix-formats.md §4.3)', () => {
    const info = parseNarInfo(canonical);
    expect(info.storePath).toBe('/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo');
    expect(info.compression).toBe('xz');
    expect(info.fileSize).toBe(4029176);
    expect(info.narSize).toBe(34878);
    expect(formatHash(info.narHash, 'sri')).toBe(vectors.canonical.narHashSri);
    expect(info.references).toEqual([
      'g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar',
      'n5wkd9frr45pa74if5gpz9j7mifg27fh-foo',
    ]);
    expect(info.deriver).toBe('g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv');
    expect(info.sigs).toHaveLength(2);
    expect(info.ca).toBe('fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh');
    expect(renderNarInfo(info)).toBe(canonical);
    expect(formatNarInfo(info)).toBe(canonical);
  });

  it('writes a freshly built info exactly as Nix does', () => {
    const { original: _, ...fresh } = parseNarInfo(canonical);
    expect(
      formatNarInfo({
        ...fresh,
        sigs: [...fresh.sigs].reverse(),
        references: [...fresh.references].reverse(),
      }),
    ).toBe(canonical);
    const minimal: NarInfo = {
      storePath: '/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo',
      url: 'nar/x.nar',
      compression: 'none',
      narHash: parseHash('sha256:09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm'),
      narSize: 8,
      references: [],
      sigs: [],
    };
    expect(formatNarInfo(minimal)).toBe(
      'StorePath: /nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo\nURL: nar/x.nar\nCompression: none\nNarHash: sha256:09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm\nNarSize: 8\nReferences: \n',
    );
  });

  it('accepts the real-world variants of §4.4 and keeps their spelling on round trip', () => {
    const hex = replaceLine(
      canonical,
      'NarHash',
      'NarHash: sha256:15e3c560894cbb27085cf65b5a2ecb18488c999497f4531b6907a7581ce6d527',
    );
    const variants = [
      hex,
      replaceLine(canonical, 'Compression', null),
      replaceLine(canonical, 'Deriver', 'Deriver: unknown-deriver'),
      replaceLine(canonical, 'References', null),
      replaceLine(
        canonical,
        'Deriver',
        'Deriver: g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv\nSystem: i686-linux',
      ),
      `${canonical}X-Unknown: whatever\n`,
      replaceLine(
        canonical,
        'References',
        'References: n5wkd9frr45pa74if5gpz9j7mifg27fh-foo  g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar',
      ),
      replaceLine(canonical, 'NarHash', 'NarHash: sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc='),
    ];
    const fingerprint = narInfoFingerprint(parseNarInfo(canonical));
    for (const text of variants) {
      const info = parseNarInfo(text);
      expect(formatNarInfo(info)).toBe(text);
      const withoutRefs = text === variants[3];
      expect(narInfoFingerprint(info)).toBe(withoutRefs ? fingerprint.replace(/;[^;]*$/, ';') : fingerprint);
    }
    expect(parseNarInfo(variants[1]!).compression).toBe('bzip2');
    expect(parseNarInfo(variants[2]!).deriver).toBeUndefined();
    expect(parseNarInfo(variants[3]!).references).toEqual([]);
    expect(renderNarInfo(parseNarInfo(variants[4]!))).toBe(canonical);
  });

  it('renders the canonical form once a parsed info is changed', () => {
    const withSystem = replaceLine(
      canonical,
      'Deriver',
      'Deriver: g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv\nSystem: x',
    );
    const info = parseNarInfo(withSystem);
    expect(formatNarInfo({ ...info, url: 'nar/other.nar.xz' })).toBe(
      canonical.replace(/^URL: .*$/m, 'URL: nar/other.nar.xz'),
    );
  });

  const malformed: [string, string, RegExp][] = [
    ['CRLF', canonical.replace(/\n/g, '\r\n'), /line 1 \(StorePath\)|line 1: carriage return/],
    ['a missing final newline', canonical.slice(0, -1), /does not end with a newline/],
    [
      'a missing StorePath',
      replaceLine(canonical, 'StorePath', null),
      /\(StorePath\): missing required field/,
    ],
    ['a missing NarHash', replaceLine(canonical, 'NarHash', null), /\(NarHash\): missing/],
    ['a missing URL', replaceLine(canonical, 'URL', null), /\(URL\): missing/],
    ['a missing NarSize', replaceLine(canonical, 'NarSize', null), /\(NarSize\): missing/],
    [
      'a zero NarSize',
      replaceLine(canonical, 'NarSize', 'NarSize: 0'),
      /line 7 \(NarSize\): NarSize is zero/,
    ],
    ['a bad hash', replaceLine(canonical, 'NarHash', 'NarHash: sha256:xyz'), /line 6 \(NarHash\)/],
    [
      'a bare hash',
      replaceLine(canonical, 'NarHash', 'NarHash: 09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm'),
      /line 6 \(NarHash\)/,
    ],
    ['a bad size', replaceLine(canonical, 'FileSize', 'FileSize: -1'), /line 5 \(FileSize\)/],
    ['a size with junk', replaceLine(canonical, 'NarSize', 'NarSize: 12 '), /line 7 \(NarSize\)/],
    [
      'a bad store path',
      replaceLine(canonical, 'StorePath', 'StorePath: /nix/store/foo'),
      /line 1 \(StorePath\)/,
    ],
    [
      'a store path outside the store',
      replaceLine(canonical, 'StorePath', 'StorePath: /tmp/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo'),
      /line 1 \(StorePath\)/,
    ],
    ['a bad reference', replaceLine(canonical, 'References', 'References: foo'), /line 8 \(References\)/],
    [
      'duplicate References',
      replaceLine(canonical, 'Deriver', 'References: \nDeriver: x'),
      /line 9 \(References\): duplicate/,
    ],
    [
      'duplicate CA',
      `${canonical}CA: fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh\n`,
      /line 13 \(CA\): duplicate/,
    ],
    ['a bad CA', replaceLine(canonical, 'CA', 'CA: fixed:r:sha256'), /line 12 \(CA\)/],
    ['no space after the colon', replaceLine(canonical, 'URL', 'URL:nar/x'), /line 2 \(URL\): expected ': '/],
    ['a line without a colon', replaceLine(canonical, 'URL', 'URL nar/x'), /line 2: expected 'Key: value'/],
    ['a blank line', replaceLine(canonical, 'URL', '\nURL: nar/x'), /line 2: empty line/],
    ['an empty URL', replaceLine(canonical, 'URL', 'URL: '), /line 2 \(URL\)/],
    [
      'an unknown compression',
      replaceLine(canonical, 'Compression', 'Compression: lolz'),
      /line 3 \(Compression\)/,
    ],
    ['a signature without a name', replaceLine(canonical, 'Sig', 'Sig: nocolon'), /line 10 \(Sig\)/],
    ['an empty file', '', /empty file/],
  ];

  it.each(malformed)('rejects %s with the source, line and field', (_, text, message) => {
    try {
      parseNarInfo(text, { source: 'abc.narinfo' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NixcacheError);
      expect((e as NixcacheError).code).toBe('BAD_NARINFO');
      expect((e as NixcacheError).message).toMatch(/^abc\.narinfo/);
      expect((e as NixcacheError).message).toMatch(message);
    }
  });

  it('fingerprints as Nix does, refusing a zero NarSize', () => {
    const info = parseNarInfo(canonical);
    expect(narInfoFingerprint(info)).toBe(
      '1;/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo;sha256:09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm;34878;/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar,/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo',
    );
    expect(() => narInfoFingerprint({ ...info, narSize: 0 })).toThrow(NixcacheError);
  });

  it.each(vectors.narinfos)('fingerprints the $id vector ($from)', (v) => {
    expect(narInfoFingerprint(parseNarInfo(v.text))).toBe(v.fingerprint);
  });
});

describe('narinfo properties', () => {
  it('parseNarInfo(formatNarInfo(i)) equals i for generated infos', () => {
    fc.assert(
      fc.property(arbitraryNarInfo, (info) => {
        const text = formatNarInfo(info);
        const { original, ...back } = parseNarInfo(text);
        expect(original?.text).toBe(text);
        expect({ ...back, sigs: [...back.sigs].sort() }).toEqual({ ...info, sigs: [...info.sigs].sort() });
        expect(formatNarInfo(back)).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });
});
