/**
 * SQLite's record format (sqlite.org/fileformat.html §2.1): varints, the column values of a
 * record, and the comparison of a record's first column with a sought key in place, which the
 * index searches of `sqlite.ts` do at every step without decoding the record (a store path was
 * decoded to a string and encoded back to UTF-8 for every comparison).
 */

/** A value of a column: SQLite's NULL, INTEGER, REAL, TEXT or BLOB. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** Reads SQLite's big-endian varint at `at`: [value, length]; NaN when it runs past the buffer. */
export function varint(buf: Uint8Array, at: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const b = buf[at + i];
    if (b === undefined) return [Number.NaN, i + 1];
    value = value * 128 + (b & 0x7f);
    if (b < 0x80) return [value, i + 1];
  }
  const last = buf[at + 8];
  if (last === undefined) return [Number.NaN, 9];
  return [value * 256 + last, 9];
}

/** Byte length of an integer of serial type 1-6. */
const INT_BYTES = [0, 1, 2, 3, 4, 6, 8];

/** The signed big-endian integer of `len` (1-8) bytes at `at`: a number when it is safe. */
function readInt(buf: Uint8Array, at: number, len: number): number | bigint {
  if (len === 8) {
    let v = 0n;
    for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(buf[at + i]!);
    const n = BigInt.asIntN(64, v);
    return Number.isSafeInteger(Number(n)) ? Number(n) : n;
  }
  // At most 48 bits: exact in a double.
  let v = 0;
  for (let i = 0; i < len; i++) v = v * 256 + buf[at + i]!;
  const top = 2 ** (8 * len);
  return v >= top / 2 ? v - top : v;
}

/**
 * Decodes a record into its column values (text as UTF-8 through `decoder`, blobs copied).
 *
 * @throws what `bad` returns, for a malformed record.
 */
export function decodeRecord(
  payload: Uint8Array,
  decoder: TextDecoder,
  bad: (what: string) => Error,
): SqlValue[] {
  const [headerSize, n0] = varint(payload, 0);
  if (!(headerSize >= n0) || headerSize > payload.length) throw bad('a malformed record header');
  const values: SqlValue[] = [];
  let at = headerSize;
  for (let h = n0; h < headerSize; ) {
    const [t, n] = varint(payload, h);
    h += n;
    if (t === 0 || t === 10 || t === 11) values.push(null);
    else if (t === 8) values.push(0);
    else if (t === 9) values.push(1);
    else if (t >= 1 && t <= 6) {
      const len = INT_BYTES[t]!;
      if (at + len > payload.length) throw bad('a record runs past its payload');
      values.push(readInt(payload, at, len));
      at += len;
    } else if (t === 7) {
      if (at + 8 > payload.length) throw bad('a record runs past its payload');
      values.push(new DataView(payload.buffer, payload.byteOffset + at, 8).getFloat64(0));
      at += 8;
    } else {
      // NaN (a varint cut short) lands here too, and is refused by the length check.
      const len = (t - (t % 2 === 0 ? 12 : 13)) / 2;
      if (!(at + len <= payload.length)) throw bad('a record runs past its payload');
      const bytes = payload.subarray(at, at + len);
      values.push(t % 2 === 0 ? bytes.slice() : decoder.decode(bytes));
      at += len;
    }
  }
  return values;
}

/**
 * Compares the first column of a record with `key` in SQLite's order for the values we seek:
 * NULL < numbers < text (BINARY: UTF-8 bytes) < blobs. Text is compared where it lies, a number
 * decoded alone; the rest of the record is not looked at.
 *
 * @throws what `bad` returns, for a malformed record.
 */
export function compareFirstColumn(
  payload: Uint8Array,
  key: Uint8Array | number,
  bad: (what: string) => Error,
): number {
  const [headerSize, n0] = varint(payload, 0);
  if (!(headerSize >= n0) || headerSize > payload.length) throw bad('a malformed record header');
  // A record without columns: its first column is NULL.
  const t = n0 < headerSize ? varint(payload, n0)[0] : 0;
  const at = headerSize;
  const isNull = t === 0 || t === 10 || t === 11;
  const isNumber = t >= 1 && t <= 9;
  if (typeof key === 'number') {
    if (isNull) return -1;
    if (!isNumber) return 1;
    let v: number;
    if (t === 8 || t === 9) v = t - 8;
    else if (t === 7) {
      if (at + 8 > payload.length) throw bad('a record runs past its payload');
      v = new DataView(payload.buffer, payload.byteOffset + at, 8).getFloat64(0);
    } else {
      const len = INT_BYTES[t]!;
      if (at + len > payload.length) throw bad('a record runs past its payload');
      v = Number(readInt(payload, at, len));
    }
    return v < key ? -1 : v > key ? 1 : 0;
  }
  if (isNull || isNumber) return -1;
  if (t % 2 === 0) return 1; // a blob
  const len = (t - 13) / 2;
  if (!(at + len <= payload.length)) throw bad('a record runs past its payload');
  const n = Math.min(len, key.length);
  for (let i = 0; i < n; i++) {
    const d = payload[at + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return len - key.length;
}
