/**
 * The single-pass narinfo parser checks the common spellings with character tables and leaves the
 * rest to the general parsers. These tests hold the two to the same answers, so that speed never
 * changes what is accepted, and check that formatNarInfo notices changes to a parsed info.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatNarInfo,
  formatStorePath,
  NixcacheError,
  parseHash,
  parseNarInfo,
  parseStorePath,
  parseStorePathBasename,
  renderNarInfo,
} from '../../src/index.js';
import { decodeNix32, decodeNix32At, encodeNix32 } from '../../src/nix32.js';
import { basename, nix32Char } from '../helpers/arbitraries.js';
import vectors from '../vectors/signatures.json' with { type: 'json' };

const canonical = vectors.canonical.text;
const hash = 'n5wkd9frr45pa74if5gpz9j7mifg27fh';

function withLine(key: string, line: string): string {
  return canonical.replace(new RegExp(`^${key}: .*$`, 'm'), line);
}

function accepts(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (!(e instanceof NixcacheError)) throw e;
    return false;
  }
}

// Basenames near every rule: characters, length, '.'/'..' prefixes, a missing dash, non-ASCII.
const nameUnit = fc.constantFrom(...'abzAZ09+-._?=/ \té€:'.split(''));
const trickyName = fc.oneof(
  fc.string({ unit: nameUnit, minLength: 0, maxLength: 8 }),
  fc.constantFrom('.', '..', '.-x', '..-x', '.x', '..x', '...', 'x'.repeat(211), 'x'.repeat(212)),
);
const trickyHash = fc.oneof(
  fc.string({ unit: nix32Char, minLength: 32, maxLength: 32 }),
  fc.string({ unit: fc.constantFrom(...'0az-eotuAé'.split('')), minLength: 31, maxLength: 33 }),
);
const trickyBasename = fc.tuple(trickyHash, fc.constantFrom('-', '_', ''), trickyName).map((p) => p.join(''));

describe('narinfo fast paths agree with the general parsers', () => {
  it('accepts a reference, deriver or store path exactly when the store-path parser does', () => {
    fc.assert(
      fc.property(trickyBasename, (b) => {
        const valid = accepts(() => parseStorePathBasename(b));
        const items = b.split(' ').filter((x) => x !== '');
        expect(accepts(() => parseNarInfo(withLine('References', `References: ${b}`)))).toBe(
          items.every((x) => accepts(() => parseStorePathBasename(x))),
        );
        expect(accepts(() => parseNarInfo(withLine('Deriver', `Deriver: ${b}`)))).toBe(
          b === 'unknown-deriver' || valid,
        );
        const full = `/nix/store/${b}`;
        const pathValid =
          accepts(() => parseStorePath(full)) && formatStorePath(parseStorePath(full)) === full;
        expect(accepts(() => parseNarInfo(withLine('StorePath', `StorePath: ${full}`)))).toBe(pathValid);
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the same answers at every offset of a basename in the text (the checks read words)', () => {
    // Also hash parts with exactly one bad character, anywhere in them.
    const oneBadHash = fc
      .tuple(
        fc.string({ unit: nix32Char, minLength: 32, maxLength: 32 }),
        fc.nat(31),
        fc.constantFrom(...'eotuAZ-_.é '),
      )
      .map(([h, i, c]) => `${h.slice(0, i)}${c}${h.slice(i + 1)}`);
    const basenames = fc.oneof(
      trickyBasename,
      fc.tuple(oneBadHash, trickyName).map(([h, n]) => `${h}-${n}`),
    );
    fc.assert(
      fc.property(basenames, fc.nat(3), (b, shift) => {
        const valid = accepts(() => parseStorePathBasename(b));
        const items = b.split(' ').filter((x) => x !== '');
        const longerUrl = (text: string) => text.replace(/^URL: (.*)$/m, `URL: $1${'x'.repeat(shift)}`);
        expect(
          accepts(() => parseNarInfo(withLine('References', `References: ${' '.repeat(shift)}${b}`))),
        ).toBe(items.every((x) => accepts(() => parseStorePathBasename(x))));
        expect(accepts(() => parseNarInfo(longerUrl(withLine('Deriver', `Deriver: ${b}`))))).toBe(
          b === 'unknown-deriver' || valid,
        );
        const storeDir = '/store'.slice(0, 2 + shift);
        const full = `${storeDir}/${b}`;
        const pathValid =
          accepts(() => parseStorePath(full, storeDir)) &&
          formatStorePath(parseStorePath(full, storeDir)) === full;
        const text = withLine('StorePath', `StorePath: ${full}`);
        expect(accepts(() => parseNarInfo(text, { storeDir }))).toBe(pathValid);
      }),
      { numRuns: 2000 },
    );
  });

  it('sorts and de-duplicates references however they are spaced', () => {
    fc.assert(
      fc.property(
        fc.array(basename, { maxLength: 6 }),
        fc.array(fc.nat(3), { maxLength: 7 }),
        (refs, gaps) => {
          const line = refs.map((r, i) => `${' '.repeat(gaps[i] ?? 1)}${r}`).join(' ');
          const info = parseNarInfo(withLine('References', `References: ${line}`));
          expect(info.references).toEqual([...new Set(refs)].sort());
        },
      ),
    );
  });

  it('decodes NarHash and FileHash in every spelling to the same digest', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (digest) => {
        const spellings = [
          `sha256:${encodeNix32(digest)}`,
          `sha256:${Buffer.from(digest).toString('hex')}`,
          `sha256:${Buffer.from(digest).toString('base64')}`,
          `sha256-${Buffer.from(digest).toString('base64')}`,
        ];
        for (const s of spellings) {
          const info = parseNarInfo(withLine('NarHash', `NarHash: ${s}`));
          expect(info.narHash.digest).toEqual(digest);
          expect(parseNarInfo(withLine('FileHash', `FileHash: ${s}`)).fileHash?.digest).toEqual(digest);
        }
      }),
    );
  });

  it('rejects 52-character nix32 hashes exactly when decodeNix32 does', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'019azeZ'.split('')), minLength: 52, maxLength: 52 }),
        (d) => {
          const valid = accepts(() => decodeNix32(d, 32));
          expect(accepts(() => parseNarInfo(withLine('NarHash', `NarHash: sha256:${d}`)))).toBe(valid);
          const bytes = Uint8Array.from(`sha256:${d}`, (c) => c.charCodeAt(0));
          expect(decodeNix32At(bytes, 7, 32) !== undefined).toBe(valid);
        },
      ),
    );
  });

  it('decodeNix32At decodes what encodeNix32 writes, for every digest size, at any offset', () => {
    for (const size of [1, 2, 5, 16, 20, 32, 64]) {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: size, maxLength: size }), fc.nat(3), (digest, offset) => {
          const text = `${'x'.repeat(offset)}${encodeNix32(digest)}`;
          const codes = Uint8Array.from(text, (c) => c.charCodeAt(0));
          expect(decodeNix32At(codes, offset, size)).toEqual(digest);
        }),
        { numRuns: 200 },
      );
    }
  });

  it('keeps the error messages of the general parsers', () => {
    expect(() => parseNarInfo(withLine('References', `References: ${hash}-fé`), { source: 'x' })).toThrow(
      /^x line 8 \(References\): invalid store path .*name contains a character/,
    );
    expect(() => parseNarInfo(withLine('NarHash', `NarHash: sha256:${'e'.repeat(52)}`))).toThrow(
      /line 6 \(NarHash\): invalid hash .*invalid character "e"/,
    );
    expect(() => parseNarInfo(withLine('Deriver', `Deriver: ${hash}-..-x`))).toThrow(/line 9 \(Deriver\)/);
    expect(() => parseNarInfo(withLine('StorePath', `StorePath: /nix/store//${hash}-foo`))).toThrow(
      /line 1 \(StorePath\): store path .* is not in canonical form/,
    );
    expect(() => parseNarInfo(withLine('NarSize', 'NarSize: 99999999999999999999'))).toThrow(
      /line 7 \(NarSize\): number 99999999999999999999 is too large/,
    );
    expect(() => parseNarInfo(withLine('NarSize', 'NarSize: +1'))).toThrow(/expected a decimal number/);
    expect(() => parseNarInfo(withLine('NarSize', 'NarSize: '))).toThrow(/expected a decimal number/);
    expect(() => parseNarInfo(`${canonical}Sig: x:y\nSig\n`)).toThrow(/line 14: expected 'Key: value'/);
    expect(() => parseNarInfo(`${canonical}Foo:\n`)).toThrow(/line 13 \(Foo\): expected ': '/);
  });

  it('reads non-ASCII text where it is allowed, with the right line numbers after it', () => {
    const text = withLine('URL', 'URL: nar/ünïcødé-€.nar.xz');
    const info = parseNarInfo(`${text}X-Note: 😀\n`);
    expect(info.url).toBe('nar/ünïcødé-€.nar.xz');
    expect(formatNarInfo(info)).toBe(`${text}X-Note: 😀\n`);
    expect(() => parseNarInfo(withLine('NarSize', 'NarSize: ١٢'))).toThrow(/line 7 \(NarSize\)/);
  });

  it('honours the storeDir option (which must be written canonically, as before)', () => {
    const other = canonical.replaceAll('/nix/store/', '/gnu/store/');
    expect(parseNarInfo(other, { storeDir: '/gnu/store' }).storePath).toBe(`/gnu/store/${hash}-foo`);
    expect(() => parseNarInfo(other, { storeDir: '/gnu/store/' })).toThrow(/not in canonical form/);
    expect(() => parseNarInfo(other, { storeDir: '/gnu//store' })).toThrow(/not in canonical form/);
    expect(() => parseNarInfo(other)).toThrow(/line 1 \(StorePath\)/);
    expect(() => parseNarInfo(canonical, { storeDir: '/gnu/store' })).toThrow(/line 1 \(StorePath\)/);
  });
});

describe('formatNarInfo on parsed infos', () => {
  it('writes the original text back while the fields are unchanged, even when re-ordered', () => {
    const text = withLine('NarHash', `NarHash: ${vectors.canonical.narHashSri}`);
    const info = parseNarInfo(text);
    expect(formatNarInfo(info)).toBe(text);
    expect(formatNarInfo({ ...info, sigs: [...info.sigs].reverse() })).toBe(text);
    expect(formatNarInfo({ ...info, references: [...info.references, info.references[0]!] })).toBe(text);
    expect(formatNarInfo({ ...info, narHash: parseHash(vectors.canonical.narHashSri) })).toBe(text);
  });

  it('writes the canonical text once anything changes, also in place', () => {
    const info = parseNarInfo(canonical.replace('Deriver:', 'System: x\nDeriver:'));
    const changes: ((i: typeof info) => typeof info)[] = [
      (i) => ({ ...i, narSize: i.narSize + 1 }),
      (i) => ({ ...i, fileSize: undefined }),
      (i) => ({ ...i, deriver: undefined }),
      (i) => ({ ...i, ca: undefined }),
      (i) => ({ ...i, compression: 'zstd' }),
      (i) => ({ ...i, sigs: i.sigs.slice(1) }),
      (i) => ({ ...i, references: i.references.slice(1) }),
      (i) => ({ ...i, storePath: `/gnu/store/${hash}-foo` }),
      (i) => {
        i.narHash.digest[0] = i.narHash.digest[0]! ^ 1;
        return i;
      },
      (i) => {
        (i.sigs as string[]).push('other:AAAA');
        return i;
      },
    ];
    for (const change of changes) {
      const changed = change(parseNarInfo(info.original!.text));
      expect(formatNarInfo(changed)).toBe(renderNarInfo(changed));
      expect(formatNarInfo(changed)).not.toContain('System:');
    }
  });
});
