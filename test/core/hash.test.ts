import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compressHash,
  formatHash,
  HASH_ALGORITHMS,
  HASH_SIZES,
  type HashAlgorithm,
  hashBytes,
  NixcacheError,
  parseHash,
} from '../../src/index.js';
import { toHex } from '../../src/internal/bytes.js';
import { setNativeCryptoEnabled } from '../../src/internal/native.js';
import vectors from '../vectors/hashes.json' with { type: 'json' };

describe('hashes', () => {
  it.each(vectors.conversions)('converts $algorithm between all encodings ($from)', (v) => {
    const algorithm = v.algorithm as HashAlgorithm;
    for (const text of [
      `${algorithm}:${v.base16}`,
      `${algorithm}:${v.nix32}`,
      `${algorithm}:${v.base64}`,
      `${algorithm}-${v.base64}`,
    ]) {
      const h = parseHash(text);
      expect(h.algorithm).toBe(algorithm);
      expect(formatHash(h, 'base16')).toBe(`${algorithm}:${v.base16}`);
      expect(formatHash(h, 'nix32')).toBe(`${algorithm}:${v.nix32}`);
      expect(formatHash(h)).toBe(`${algorithm}:${v.nix32}`);
      expect(formatHash(h, 'base64')).toBe(`${algorithm}:${v.base64}`);
      expect(formatHash(h, 'sri')).toBe(`${algorithm}-${v.base64}`);
    }
    for (const bare of [v.base16, v.nix32, v.base64])
      expect(toHex(parseHash(bare, algorithm).digest)).toBe(v.base16);
  });

  it.each(vectors.digests)('hashes $input with $algorithm ($from)', (v) => {
    const algorithm = v.algorithm as HashAlgorithm;
    for (const native of [true, false]) {
      setNativeCryptoEnabled(native);
      const h = { algorithm, digest: hashBytes(algorithm, v.input) };
      if (v.sri) expect(formatHash(h, 'sri')).toBe(v.sri);
      if (v.base16) expect(toHex(h.digest)).toBe(v.base16);
      if (v.nix32) expect(formatHash(h)).toBe(`${algorithm}:${v.nix32}`);
    }
    setNativeCryptoEnabled(true);
  });

  it.each(vectors.equivalentForms)('accepts equivalent spellings ($from)', ({ forms }) => {
    const rendered = forms.map((f) => formatHash(parseHash(f), 'base16'));
    expect(new Set(rendered).size).toBe(1);
  });

  it.each(vectors.invalid)('rejects $text: $why', ({ text }) => {
    expect(() => parseHash(text)).toThrow(NixcacheError);
  });

  it('needs an algorithm for a bare digest and checks an expected one', () => {
    expect(() => parseHash('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')).toThrow(
      /no algorithm/,
    );
    expect(() => parseHash('sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', 'sha512')).toThrow(
      /expected a sha512 hash, got sha256/,
    );
    expect(() => parseHash('md5:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s')).toThrow(
      /wrong length/,
    );
    try {
      parseHash('blake9:abc');
    } catch (e) {
      expect((e as NixcacheError).code).toBe('UNKNOWN_ALGORITHM');
    }
  });

  it('folds a sha256 into 20 bytes as Nix does', () => {
    const d = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const f = compressHash(d, 20);
    for (let k = 0; k < 20; k++) expect(f[k]).toBe(k < 12 ? d[k]! ^ d[k + 20]! : d[k]);
  });

  it('round-trips every algorithm and encoding (property)', () => {
    const arb = fc.constantFrom(...HASH_ALGORITHMS).chain((algorithm) =>
      fc.record({
        algorithm: fc.constant(algorithm),
        digest: fc.uint8Array({ minLength: HASH_SIZES[algorithm], maxLength: HASH_SIZES[algorithm] }),
        encoding: fc.constantFrom('nix32', 'base16', 'base64', 'sri') as fc.Arbitrary<
          'nix32' | 'base16' | 'base64' | 'sri'
        >,
      }),
    );
    fc.assert(
      fc.property(arb, ({ algorithm, digest, encoding }) => {
        const back = parseHash(formatHash({ algorithm, digest }, encoding));
        expect(back.algorithm).toBe(algorithm);
        expect(back.digest).toEqual(digest);
      }),
      { numRuns: 2000 },
    );
  });

  it('pure and native hashing agree (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HASH_ALGORITHMS),
        fc.uint8Array({ maxLength: 300 }),
        (algorithm, bytes) => {
          setNativeCryptoEnabled(false);
          const pure = hashBytes(algorithm, bytes);
          setNativeCryptoEnabled(true);
          expect(hashBytes(algorithm, bytes)).toEqual(pure);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('bytewise string order', () => {
  it('orders strings as their UTF-8 bytes (property)', async () => {
    const { compareUtf8, compareBytes, utf8 } = await import('../../src/internal/bytes.js');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(compareBytes(utf8(a), utf8(b))));
      }),
      { numRuns: 3000 },
    );
    expect(compareUtf8('\u{10000}', '\uffff')).toBeGreaterThan(0);
  });
});
