/**
 * A read-only reader of SQLite database files (the format of sqlite.org/fileformat.html), just
 * enough to read the local Nix database without the `nix` binary, a native addon or WASM: table
 * b-trees (scan, lookup by rowid), index b-trees (lookup by a text key, range by an integer key),
 * records with overflow pages, and the write-ahead log (`-wal`) that Nix's database uses, whose
 * committed frames take the place of the main file's pages.
 *
 * It takes no lock and writes nothing (not even the `-shm` file), so a running nix-daemon is never
 * disturbed. Consistency without locks: the pages read are the main file overlaid with every frame
 * of the WAL up to its last commit. Two things can change that under us: a checkpoint, which also
 * copies frames committed after our snapshot into the main file (and, when the last writer
 * closes, removes the WAL), and a WAL restart (a new salt in its header). Callers re-check
 * `changed()` after reading (it compares the main file's size, mtime and inode and the WAL's salt
 * with the snapshot's) and read again when it is true.
 * Pages are read on demand with a small cache, so memory does not grow with the database.
 */
import { type BigIntStats, closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { NixcacheError } from '../errors.js';
import { compareFirstColumn, decodeRecord, type SqlValue, varint } from './sqlite-record.js';

export type { SqlValue } from './sqlite-record.js';

/** One row of a table: its rowid and its column values in declaration order. */
export interface SqlRow {
  readonly rowid: number;
  readonly values: readonly SqlValue[];
}

const MAGIC = 'SQLite format 3\0';

/** A file's identity and last change, to the nanosecond. */
function stampOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
}

const WAL_MAGIC_LE = 0x377f0682;
const WAL_MAGIC_BE = 0x377f0683;
const PAGE_CACHE = 256;
const MAX_DEPTH = 64;

const TABLE_INTERIOR = 0x05;
const TABLE_LEAF = 0x0d;
const INDEX_INTERIOR = 0x02;
const INDEX_LEAF = 0x0a;

function bad(file: string, what: string): NixcacheError {
  return new NixcacheError('BAD_DATABASE', `${file}: ${what}`, { file });
}

function u16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function u32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) >>> 0) + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

/** A b-tree page: its bytes, kind, cell offsets and right-most child (interior pages). */
interface BTreeNode {
  readonly page: Uint8Array;
  readonly kind: number;
  readonly cells: readonly number[];
  readonly right: number;
}

/** An open database file (and its WAL, when there is one). */
export class SqliteFile {
  readonly file: string;
  #fd: number;
  #walFd: number | undefined;
  #pageSize = 0;
  #usable = 0;
  #pageCount = 0;
  /** Page number → offset of its newest committed frame in the WAL. */
  #walPages = new Map<number, number>();
  #walSalt = '';
  /** The main file's identity, size and mtime when the snapshot was taken. */
  #mainStamp = '';
  #cache = new Map<number, Uint8Array>();
  /** Parsed b-tree page headers of recently used pages (an index search visits the same few). */
  #nodes = new Map<number, BTreeNode>();
  #schema: { type: string; name: string; tblName: string; rootPage: number; sql: string }[] = [];
  #decoder = new TextDecoder('utf-8', { fatal: false });

  private constructor(file: string, fd: number) {
    this.file = file;
    this.#fd = fd;
  }

  /**
   * Opens a database read-only (without locks) and reads its schema.
   *
   * @throws {NixcacheError} IO when the file cannot be opened; BAD_DATABASE when it is not a
   *   SQLite 3 database in UTF-8, or its pages are malformed.
   * @example const db = SqliteFile.open('/nix/var/nix/db/db.sqlite')
   */
  static open(file: string): SqliteFile {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (e) {
      throw new NixcacheError(
        'IO',
        `cannot open ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { file },
        { cause: e },
      );
    }
    const db = new SqliteFile(file, fd);
    try {
      db.#load();
    } catch (e) {
      db.close();
      throw e;
    }
    return db;
  }

  /** Re-reads the header, the WAL and the schema (a fresh snapshot). */
  #load(): void {
    this.#cache.clear();
    this.#nodes.clear();
    this.#walPages.clear();
    this.#mainStamp = stampOf(fstatSync(this.#fd, { bigint: true }));
    const header = new Uint8Array(100);
    if (readSync(this.#fd, header, 0, 100, 0) !== 100)
      throw bad(this.file, 'too short for a SQLite database');
    if (new TextDecoder('latin1').decode(header.subarray(0, 16)) !== MAGIC)
      throw bad(this.file, 'not a SQLite 3 database');
    const size = u16(header, 16);
    this.#pageSize = size === 1 ? 65536 : size;
    if (this.#pageSize < 512 || (this.#pageSize & (this.#pageSize - 1)) !== 0)
      throw bad(this.file, `invalid page size ${this.#pageSize}`);
    this.#usable = this.#pageSize - header[20]!;
    if (this.#usable < 480) throw bad(this.file, 'invalid reserved space');
    const encoding = u32(header, 56);
    if (encoding !== 0 && encoding !== 1) throw bad(this.file, 'only UTF-8 databases are supported');
    const fileSize = fstatSync(this.#fd).size;
    this.#pageCount = Math.floor(fileSize / this.#pageSize);
    this.#readWal();
    this.#schema = [];
    for (const row of this.scan(1)) {
      const [type, name, tblName, rootPage, sql] = row.values;
      this.#schema.push({
        type: String(type),
        name: String(name),
        tblName: String(tblName),
        rootPage: Number(rootPage ?? 0),
        sql: typeof sql === 'string' ? sql : '',
      });
    }
  }

  /** Indexes the committed frames of `<file>-wal`, if it exists and belongs to this database. */
  #readWal(): void {
    if (this.#walFd === undefined) {
      try {
        this.#walFd = openSync(`${this.file}-wal`, 'r');
      } catch {
        this.#walSalt = '';
        return;
      }
    }
    const fd = this.#walFd;
    const header = new Uint8Array(32);
    if (readSync(fd, header, 0, 32, 0) !== 32) {
      this.#walSalt = '';
      return;
    }
    const magic = u32(header, 0);
    if (magic !== WAL_MAGIC_LE && magic !== WAL_MAGIC_BE) {
      this.#walSalt = '';
      return;
    }
    const bigEndian = magic === WAL_MAGIC_BE;
    const pageSize = u32(header, 8);
    if (pageSize !== this.#pageSize) throw bad(this.file, 'WAL page size differs from the database');
    const salt1 = u32(header, 16);
    const salt2 = u32(header, 20);
    this.#walSalt = `${salt1}:${salt2}`;
    let [s0, s1] = walChecksum(header.subarray(0, 24), 0, 0, bigEndian);
    if (s0 !== u32(header, 24) || s1 !== u32(header, 28)) return;
    const frameSize = 24 + pageSize;
    const frame = new Uint8Array(frameSize);
    const uncommitted = new Map<number, number>();
    let dbPages = 0;
    for (let offset = 32; ; offset += frameSize) {
      if (readSync(fd, frame, 0, frameSize, offset) !== frameSize) break;
      if (u32(frame, 8) !== salt1 || u32(frame, 12) !== salt2) break;
      [s0, s1] = walChecksum(frame.subarray(0, 8), s0, s1, bigEndian);
      [s0, s1] = walChecksum(frame.subarray(24), s0, s1, bigEndian);
      if (s0 !== u32(frame, 16) || s1 !== u32(frame, 20)) break;
      const page = u32(frame, 0);
      uncommitted.set(page, offset + 24);
      const commitSize = u32(frame, 4);
      if (commitSize !== 0) {
        for (const [p, at] of uncommitted) this.#walPages.set(p, at);
        uncommitted.clear();
        dbPages = commitSize;
      }
    }
    if (dbPages > 0) this.#pageCount = dbPages;
  }

  /**
   * True when the database may have changed in a way this snapshot does not show (the WAL was
   * restarted or appeared). Read again (`refresh()`) when it is.
   */
  changed(): boolean {
    // A checkpoint writes the main file: what we read from it may be newer than our snapshot.
    if (stampOf(fstatSync(this.#fd, { bigint: true })) !== this.#mainStamp) return true;
    // The WAL we indexed, read through our own descriptor (still readable if it was removed):
    // a new salt means it restarted and frames we read may have been overwritten. A WAL that
    // appeared or was removed since changes nothing we read unless it was checkpointed, which the
    // main file's stamp shows.
    const fd = this.#walFd;
    if (fd === undefined) return false;
    const header = new Uint8Array(32);
    if (readSync(fd, header, 0, 32, 0) !== 32) return this.#walSalt !== '';
    return `${u32(header, 16)}:${u32(header, 20)}` !== this.#walSalt;
  }

  /** Takes a fresh snapshot (after `changed()`). */
  refresh(): void {
    if (this.#walFd !== undefined) {
      closeSync(this.#walFd);
      this.#walFd = undefined;
    }
    this.#load();
  }

  close(): void {
    if (this.#walFd !== undefined) closeSync(this.#walFd);
    this.#walFd = undefined;
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Root page of a table or index by name. */
  rootPage(name: string, type: 'table' | 'index'): number {
    const entry = this.#schema.find((e) => e.type === type && e.name === name);
    if (!entry) throw bad(this.file, `no ${type} named ${name}`);
    return entry.rootPage;
  }

  /** Indexes of a table, with the SQL that made them (`undefined` for automatic ones). */
  indexesOf(table: string): { name: string; sql: string }[] {
    return this.#schema
      .filter((e) => e.type === 'index' && e.tblName === table)
      .map((e) => ({ name: e.name, sql: e.sql }));
  }

  #page(n: number): Uint8Array {
    const cached = this.#cache.get(n);
    if (cached) return cached;
    if (n < 1 || n > this.#pageCount) throw bad(this.file, `page ${n} is out of range`);
    const page = new Uint8Array(this.#pageSize);
    const walAt = this.#walPages.get(n);
    const got =
      walAt !== undefined && this.#walFd !== undefined
        ? readSync(this.#walFd, page, 0, this.#pageSize, walAt)
        : readSync(this.#fd, page, 0, this.#pageSize, (n - 1) * this.#pageSize);
    if (got !== this.#pageSize) throw bad(this.file, `page ${n} is truncated`);
    if (this.#cache.size >= PAGE_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(n, page);
    return page;
  }

  /** The b-tree page header of page `n`: kind, cell offsets, right-most child. */
  #node(n: number): BTreeNode {
    const cached = this.#nodes.get(n);
    if (cached) return cached;
    const page = this.#page(n);
    const at = n === 1 ? 100 : 0;
    const kind = page[at]!;
    if (kind !== TABLE_INTERIOR && kind !== TABLE_LEAF && kind !== INDEX_INTERIOR && kind !== INDEX_LEAF)
      throw bad(this.file, `page ${n} is not a b-tree page`);
    const interior = kind === TABLE_INTERIOR || kind === INDEX_INTERIOR;
    const count = u16(page, at + 3);
    const start = at + (interior ? 12 : 8);
    if (start + count * 2 > this.#usable) throw bad(this.file, `page ${n} has too many cells`);
    const cells: number[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const off = u16(page, start + i * 2);
      if (off < start || off >= this.#usable) throw bad(this.file, `page ${n} has a cell out of bounds`);
      cells[i] = off;
    }
    const node = { page, kind, cells, right: interior ? u32(page, at + 8) : 0 };
    if (this.#nodes.size >= PAGE_CACHE) this.#nodes.delete(this.#nodes.keys().next().value!);
    this.#nodes.set(n, node);
    return node;
  }

  /** The whole payload of a cell whose payload starts at `at` with total size `size`. */
  #payload(page: Uint8Array, at: number, size: number, index: boolean): Uint8Array {
    const u = this.#usable;
    const x = index ? Math.floor(((u - 12) * 64) / 255) - 23 : u - 35;
    if (size <= x) {
      if (at + size > u) throw bad(this.file, 'a cell runs past its page');
      return page.subarray(at, at + size);
    }
    const m = Math.floor(((u - 12) * 32) / 255) - 23;
    const k = m + ((size - m) % (u - 4));
    const local = k <= x ? k : m;
    if (at + local + 4 > u) throw bad(this.file, 'a cell runs past its page');
    const out = new Uint8Array(size);
    out.set(page.subarray(at, at + local));
    let filled = local;
    let next = u32(page, at + local);
    let hops = 0;
    while (filled < size) {
      if (next === 0 || ++hops > this.#pageCount) throw bad(this.file, 'a broken overflow chain');
      const overflow = this.#page(next);
      const n = Math.min(u - 4, size - filled);
      out.set(overflow.subarray(4, 4 + n), filled);
      filled += n;
      next = u32(overflow, 0);
    }
    return out;
  }

  #record(payload: Uint8Array): SqlValue[] {
    return decodeRecord(payload, this.#decoder, this.#bad);
  }

  readonly #bad = (what: string): NixcacheError => bad(this.file, what);

  #tableCell(page: Uint8Array, off: number): SqlRow {
    const [size, n1] = varint(page, off);
    const [rowid, n2] = varint(page, off + n1);
    return { rowid, values: this.#record(this.#payload(page, off + n1 + n2, size, false)) };
  }

  /**
   * Every row of the table whose b-tree starts at `root`, in rowid order.
   *
   * @throws {NixcacheError} BAD_DATABASE for malformed pages.
   */
  *scan(root: number): Generator<SqlRow> {
    const stack: { n: number; i: number }[] = [{ n: root, i: 0 }];
    while (stack.length) {
      if (stack.length > MAX_DEPTH) throw bad(this.file, 'a b-tree is too deep');
      const top = stack[stack.length - 1]!;
      const node = this.#node(top.n);
      if (node.kind === TABLE_LEAF) {
        stack.pop();
        for (const off of node.cells) yield this.#tableCell(node.page, off);
      } else if (node.kind === TABLE_INTERIOR) {
        if (top.i < node.cells.length) {
          stack.push({ n: u32(node.page, node.cells[top.i++]!), i: 0 });
        } else if (top.i === node.cells.length) {
          top.i++;
          stack.push({ n: node.right, i: 0 });
        } else stack.pop();
      } else throw bad(this.file, `page ${top.n} is not a table page`);
    }
  }

  /**
   * The row with `rowid` in the table at `root`, or undefined.
   *
   * @throws {NixcacheError} BAD_DATABASE for malformed pages.
   */
  get(root: number, rowid: number): SqlRow | undefined {
    let n = root;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const node = this.#node(n);
      if (node.kind === TABLE_LEAF) {
        for (const off of node.cells) {
          const [, n1] = varint(node.page, off);
          const [key] = varint(node.page, off + n1);
          if (key === rowid) return this.#tableCell(node.page, off);
        }
        return undefined;
      }
      if (node.kind !== TABLE_INTERIOR) throw bad(this.file, `page ${n} is not a table page`);
      // Interior cells hold (left child, largest rowid in it), in order.
      let next = node.right;
      let lo = 0;
      let hi = node.cells.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const off = node.cells[mid]!;
        const [key] = varint(node.page, off + 4);
        if (rowid <= key) {
          next = u32(node.page, off);
          hi = mid - 1;
        } else lo = mid + 1;
      }
      n = next;
    }
    throw bad(this.file, 'a b-tree is too deep');
  }

  /**
   * Index entries (column values, rowid last) of the index at `root` whose first column compares
   * equal to `key`, in index order. Text compares as UTF-8 bytes (BINARY collation), integers
   * numerically.
   *
   * @throws {NixcacheError} BAD_DATABASE for malformed pages.
   */
  *seek(root: number, key: string | number): Generator<SqlValue[]> {
    const want = typeof key === 'string' ? encoder.encode(key) : key;
    const stack: { n: number; i: number }[] = [{ n: root, i: -1 }];
    while (stack.length) {
      if (stack.length > MAX_DEPTH) throw bad(this.file, 'a b-tree is too deep');
      const top = stack[stack.length - 1]!;
      const node = this.#node(top.n);
      const interior = node.kind === INDEX_INTERIOR;
      if (!interior && node.kind !== INDEX_LEAF) throw bad(this.file, `page ${top.n} is not an index page`);
      const payload = (i: number): Uint8Array => {
        const off = node.cells[i]! + (interior ? 4 : 0);
        const [size, n1] = varint(node.page, off);
        return this.#payload(node.page, off + n1, size, true);
      };
      if (top.i === -1) {
        // First visit: skip the cells whose key is below the one sought.
        let lo = 0;
        let hi = node.cells.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (compareFirstColumn(payload(mid), want, this.#bad) < 0) lo = mid + 1;
          else hi = mid;
        }
        top.i = lo * 2;
      }
      // Positions: 2i = the left child of cell i (interior only), 2i+1 = cell i itself;
      // 2*count = the right-most child.
      const pos = top.i++;
      const i = pos >> 1;
      if (pos === node.cells.length * 2) {
        if (interior) stack.push({ n: node.right, i: -1 });
        continue;
      }
      if (pos > node.cells.length * 2) {
        stack.pop();
        continue;
      }
      if (pos % 2 === 0) {
        if (interior) stack.push({ n: u32(node.page, node.cells[i]!), i: -1 });
        continue;
      }
      const cell = payload(i);
      const c = compareFirstColumn(cell, want, this.#bad);
      if (c > 0) {
        // Past the key: nothing further in this subtree or any ancestor's remainder.
        return;
      }
      if (c === 0) yield this.#record(cell);
    }
  }
}

const encoder = new TextEncoder();

/** WAL checksum over `data` (a multiple of 8 bytes), continuing from (s0, s1). */
function walChecksum(data: Uint8Array, s0: number, s1: number, bigEndian: boolean): [number, number] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i + 8 <= data.length; i += 8) {
    const x0 = view.getUint32(i, !bigEndian);
    const x1 = view.getUint32(i + 4, !bigEndian);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}
