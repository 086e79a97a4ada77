import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareFirstColumn, decodeRecord, type SqlValue, varint } from '../../src/local/sqlite-record.js';

/** SQLite's varint (sqlite.org/fileformat.html §1.6), for values below 2^56. */
function encodeVarint(v: number): number[] {
  const groups: number[] = [];
  do {
    groups.unshift(v % 128);
    v = Math.floor(v / 128);
  } while (v > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g));
}

/** The smallest serial type and body of a value, as SQLite writes them. */
function serial(v: SqlValue): [number, number[]] {
  if (v === null) return [0, []];
  if (typeof v === 'string') {
    const bytes = [...new TextEncoder().encode(v)];
    return [13 + 2 * bytes.length, bytes];
  }
  if (v instanceof Uint8Array) return [12 + 2 * v.length, [...v]];
  if (typeof v === 'number' && !Number.isInteger(v)) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v);
    return [7, [...b]];
  }
  const n = BigInt(v);
  if (n === 0n) return [8, []];
  if (n === 1n) return [9, []];
  for (const [type, len] of [
    [1, 1],
    [2, 2],
    [3, 3],
    [4, 4],
    [5, 6],
    [6, 8],
  ] as const) {
    const half = 1n << BigInt(8 * len - 1);
    if (n >= -half && n < half) {
      const u = BigInt.asUintN(8 * len, n);
      const bytes: number[] = [];
      for (let i = len - 1; i >= 0; i--) bytes.push(Number((u >> BigInt(8 * i)) & 0xffn));
      return [type, bytes];
    }
  }
  throw new Error('out of range');
}

function encodeRecord(values: readonly SqlValue[]): Uint8Array {
  const types: number[] = [];
  const body: number[] = [];
  for (const v of values) {
    const [t, b] = serial(v);
    types.push(...encodeVarint(t));
    body.push(...b);
  }
  // The header size counts itself: one byte while the header stays below 128 bytes.
  let size = types.length + 1;
  if (size >= 128) size = types.length + 2;
  return new Uint8Array([...encodeVarint(size), ...types, ...body]);
}

/** SQLite's order for what an index search compares: NULL < numbers < text (UTF-8 bytes) < blobs. */
function reference(a: SqlValue, key: Uint8Array | number): number {
  const rank = (v: SqlValue) =>
    v === null ? 0 : typeof v === 'number' || typeof v === 'bigint' ? 1 : typeof v === 'string' ? 2 : 3;
  const keyRank = typeof key === 'number' ? 1 : 2;
  if (rank(a) !== keyRank) return Math.sign(rank(a) - keyRank);
  if (typeof key === 'number') return Math.sign(Number(a) - key);
  const x = new TextEncoder().encode(a as string);
  const n = Math.min(x.length, key.length);
  for (let i = 0; i < n; i++) if (x[i] !== key[i]) return Math.sign(x[i]! - key[i]!);
  return Math.sign(x.length - key.length);
}

const bad = (what: string) => new Error(what);
const decoder = new TextDecoder();

const value: fc.Arbitrary<SqlValue> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.maxSafeInteger(),
  fc
    .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
    .map((n) => (Number.isSafeInteger(Number(n)) ? Number(n) : n)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.constantFrom('/nix/store/a', '/nix/store/ab', '/nix/store/b', ''),
  fc.uint8Array({ maxLength: 40 }),
);

describe('SQLite records', () => {
  it('varint reads SQLite vectors, and NaN when cut short', () => {
    expect(varint(new Uint8Array([0x7f]), 0)).toEqual([127, 1]);
    expect(varint(new Uint8Array([0x81, 0x00]), 0)).toEqual([128, 2]);
    expect(varint(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0)[1]).toBe(9);
    expect(varint(new Uint8Array([0x81]), 0)[0]).toBeNaN();
  });

  it('decodeRecord reads back every value written (property)', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 12 }), (values) => {
        const got = decodeRecord(encodeRecord(values), decoder, bad);
        expect(got).toEqual(values.map((v) => (v instanceof Uint8Array ? new Uint8Array(v) : v)));
      }),
      { numRuns: 2000 },
    );
  });

  it('compareFirstColumn orders as the decoded value compares (property)', () => {
    const key = fc.oneof(
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ unit: 'grapheme', maxLength: 80 }).map((s) => new TextEncoder().encode(s)),
      fc.constantFrom('/nix/store/a', '/nix/store/ab', '').map((s) => new TextEncoder().encode(s)),
    );
    fc.assert(
      fc.property(fc.array(value, { maxLength: 4 }), key, (values, k) => {
        const record = encodeRecord(values);
        expect(Math.sign(compareFirstColumn(record, k, bad))).toBe(reference(values[0] ?? null, k));
      }),
      { numRuns: 3000 },
    );
  });

  it('a truncated or malformed record is an error from `bad`, never a wrong value', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 6 }), fc.nat(), (values, cut) => {
        const record = encodeRecord(values);
        const short = record.subarray(0, cut % record.length);
        for (const read of [
          () => decodeRecord(short, decoder, bad),
          () => compareFirstColumn(short, 0, bad),
          () => compareFirstColumn(short, new Uint8Array([0x2f]), bad),
        ]) {
          try {
            read();
          } catch (e) {
            expect((e as Error).message).toMatch(/record/);
          }
        }
        // What a cut record decodes to, when it decodes, is a prefix of the columns at most.
        try {
          const got = decodeRecord(short, decoder, bad);
          expect(got.length).toBeLessThanOrEqual(values.length);
        } catch {
          // refused: fine
        }
      }),
      { numRuns: 2000 },
    );
    expect(() => decodeRecord(new Uint8Array([0x05, 0x01]), decoder, bad)).toThrow(/malformed record header/);
    expect(() => compareFirstColumn(new Uint8Array([0x02, 0x21, 0x41]), new Uint8Array(), bad)).toThrow(
      /runs past/,
    );
  });
});
