import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeNix32, encodeNix32, NixcacheError, nix32Length } from '../../src/index.js';
import { fromHex, toHex } from '../../src/internal/bytes.js';
import vectors from '../vectors/nix32.json' with { type: 'json' };

describe('nix32', () => {
  it.each(vectors.valid)('encodes and decodes $hex ($from)', ({ hex, nix32 }) => {
    const bytes = fromHex(hex)!;
    expect(encodeNix32(bytes)).toBe(nix32);
    expect(toHex(decodeNix32(nix32))).toBe(hex);
    expect(toHex(decodeNix32(nix32, bytes.length))).toBe(hex);
  });

  it.each(vectors.invalid)('rejects $nix32: $why', ({ nix32 }) => {
    expect(() => decodeNix32(nix32)).toThrow(NixcacheError);
  });

  it('rejects a length that does not match the expected byte count', () => {
    expect(() => decodeNix32('0z', 2)).toThrow(/length 2, expected 4/);
  });

  it('rejects uppercase and non-ASCII characters', () => {
    expect(() => decodeNix32('0Z')).toThrow(/invalid character "Z"/);
    expect(() => decodeNix32('0é')).toThrow(NixcacheError);
  });

  it('has the lengths of the spec', () => {
    expect([0, 16, 20, 32, 64].map(nix32Length)).toEqual([0, 26, 32, 52, 103]);
  });

  it('round-trips any bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = encodeNix32(bytes);
        expect(text.length).toBe(nix32Length(bytes.length));
        expect(decodeNix32(text, bytes.length)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes any string to bytes that encode back to it, or throws NixcacheError (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        try {
          expect(encodeNix32(decodeNix32(text))).toBe(text);
        } catch (e) {
          expect(e).toBeInstanceOf(NixcacheError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
