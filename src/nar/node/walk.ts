/**
 * The filesystem walk behind `dumpPath` and `hashPath` (nix-formats.md §6.2): what Nix's
 * `dumpPath` serialises, written straight into output chunks. Names are sorted bytewise by their
 * raw bytes, symlinks are never followed, `executable` is the owner-execute bit, other file
 * types and depth ≥ `NAR_MAX_DEPTH` (4096) are errors. Not exported from the package.
 *
 * Performance notes (measured on a ~10,000-file node_modules tree plus a 32 MB file, NAR
 * 360 MB, see bench/nar.ts; the work is system calls, so what counts is how many there are and
 * how little JS runs around each):
 * - The walk's file system calls are synchronous, as Nix's are: libuv's thread pool costs a
 *   round trip per call and measured 4x slower on many small files. It gives the event loop a
 *   turn every 10 ms of work (internal/turn.ts: one clock shared with the loops that start
 *   work, so that a push of many small paths, each walked in well under 10 ms, yields too).
 * - Directories are listed with their entry types (d_type), so a child directory or symlink
 *   needs no lstat, and a regular file is opened (O_NOFOLLOW | O_NONBLOCK) and fstat'ed instead
 *   of lstat'ed and opened: one path lookup per file rather than two (open-node.ts).
 * - Small files are read straight into the output chunk (no copy), framing and names (UTF-8
 *   straight from the listed strings) written into the same chunk.
 * - `hashPath` (`readAhead`) reads files of `ASYNC_FROM` (512 KiB) or more in 1 MiB pieces in
 *   the thread pool, two at a time, while the walk and the hashing go on, up to `LOOKAHEAD`
 *   bytes ahead: a round trip per MiB is cheap, unlike one per small file. `dumpPath` does not,
 *   with either kind of chunk: a large file is read synchronously, one chunk per step, each
 *   chunk handed out before the next is read. With fresh chunks, keeping pieces alive across
 *   awaits made V8 promote them and run more full GCs per dump; with reused chunks, the pieces
 *   (up to 16 MiB of them in rotation) are cold in the CPU cache where the reused chunk is warm:
 *   `reuseChunks` to /dev/null measured 0.19-0.21 s CPU per dump with read-ahead against
 *   0.15-0.16 s without (wall 0.20 s vs 0.15 s, 3 alternating runs of 8 dumps each). `hashPath`
 *   without read-ahead takes ~10% less CPU (medians 378-388 ms vs 418-433 ms) but its wall
 *   time depends on whether the second core is free: 423 vs 453, 381 vs 359, 399 vs 404 ms
 *   (without vs with, three in-process runs of 8-10 alternating rounds; `nix hash path`
 *   371-400 ms), so hashing keeps it.
 * - Fresh chunks (plain `dumpPath`: the caller owns each) cost what allocating the whole NAR
 *   costs: page faults, a GC per ~24-64 MB of them (V8's external-memory accounting; a
 *   scavenge in a small heap, slow full GCs in a large one), and above all the kernel copying
 *   file data into memory that is no longer in the CPU cache. Reused chunks come from a pool and
 *   go back once consumed, so their memory stays warm and none of that happens. perf, per dump
 *   of the bench's 360 MB NAR (Node 20): copy to user space 61 ms fresh vs 43 ms reused (Nix:
 *   35 ms into its 64 KiB buffer), page faults and unmapping ~8 ms vs ~1 ms. Reading a 32 MB
 *   file with readSync: reused 64 KiB-1 MiB buffer 138-155 ms/GB of CPU; fresh allocUnsafe
 *   244-470; zeroed `new Uint8Array` 282-295; 1 MiB views carved from 8 MiB slabs 302-443;
 *   into a warm scratch buffer, then copied to a fresh one 333-394. Fresh chunk sizes, medians
 *   of 10 alternating dumps in one process: 1 MiB 164 ms wall / 172 ms CPU, 256 KiB 165 / 168,
 *   128 KiB 176 / 179 (4 MiB in separate runs: no better).
 * - Where a dump's time goes (CPU per dump, alternating runs of 8-10 dumps; the machine is
 *   shared, so ±15%): `nix-store --dump` 0.12-0.13 s (of which ~0.02 s process start),
 *   `dumpPath { reuseChunks }` 0.14-0.16 s, `dumpPath` 0.17-0.20 s. Wall, medians of 10
 *   alternating rounds in one process: `nix-store --dump` (a process) 135-152 ms, `reuseChunks`
 *   148 ms, fresh chunks 164 ms (see above for `hashPath`). A bare loop over
 *   the same tree (readdirSync, then openSync/fstatSync/readSync/closeSync per file into one
 *   256 KiB buffer, no NAR) takes 0.12-0.13 s: Node's cost per sync fs call is most of the gap, the
 *   walk's own JS is ~0.02 s. Per call Node 20 spends ~0.15 µs in a tracing-category lookup
 *   (strcmp, ~6 ms per dump) and fstatSync builds a Stats with four Dates (~4 ms per dump).
 *   Tried, no measurable change: calling the fs functions through named imports instead of the
 *   namespace object; reused chunks of 64 KiB, 128 KiB, 256 KiB and 1 MiB (0.13-0.15 s wall).
 *   Node 24 (lazy Stats dates): reused chunks 0.05 s user vs 0.06-0.09 s on Node 20, fresh
 *   chunks no better. The syscalls are fewer than Nix's (per file openat, statx, pread64,
 *   close; Nix lstats each entry, then opens and reads).
 * - Listings come back from libuv sorted with strcmp (byte order); the walk checks that and
 *   sorts only when needed. Names are read as strings, and re-read as Buffers when one is not
 *   valid UTF-8, so raw names always round-trip; UTF-16 order equals UTF-8 byte order only
 *   below U+D800, so names with such characters are compared as bytes.
 */
import * as fs from 'node:fs';
import { NixcacheError } from '../../errors.js';
import { turn, turnDue } from '../../internal/turn.js';
import { FRAME, NAR_MAX_DEPTH } from '../wire.js';
import { Buffers, ChunkWriter } from './chunk-writer.js';
import { changed, checkAbort, type FsPath, ioError, join, show } from './fs-path.js';
import { type Listing, REGULAR, SYMLINK, UNKNOWN } from './list-dir.js';
import { openNode } from './open-node.js';

/** Chunk size when chunks are handed out (dumping); each is a fresh buffer. */
export const FRESH_CHUNK = 1024 * 1024;
/** Size of a dump's first chunk; the next ones grow fourfold up to FRESH_CHUNK (chunk-writer.ts). */
export const FIRST_FRESH_CHUNK = 16 * 1024;
/** Chunk size when chunks are consumed at once and reused (hashing). */
export const REUSED_CHUNK = 256 * 1024;
/** Files at least this large are read in the thread pool while the walk goes on. */
export const ASYNC_FROM = 512 * 1024;
/** Size of the pieces those files are read in. */
const PIECE = 1024 * 1024;
/** Pieces being read at once. */
const MAX_INFLIGHT = 2;
/** How far (bytes of output in memory, not yet handed out) the walk may run ahead of the consumer. */
const LOOKAHEAD = 16 * 1024 * 1024;
/** Large files open at once (each waiting for its pieces to be read). */
const MAX_OPEN = 8;

// The framing tokens, read once (not through the module namespace on every use).
const T_CLOSE = FRAME.close;
const T_CLOSE_ENTRY = FRAME.closeEntry;
const T_HEADER = FRAME.header;
const T_REGULAR = FRAME.regular;
const T_REGULAR_EXECUTABLE = FRAME.regularExecutable;
const T_SYMLINK = FRAME.symlink;
const T_DIRECTORY = FRAME.directory;
const T_ENTRY_NAME = FRAME.entryName;
const T_NODE_TYPE = FRAME.nodeType;

interface Frame {
  readonly path: FsPath;
  readonly listing: Listing;
  index: number;
  readonly depth: number;
}

/** A large file whose contents are read in the thread pool, piece by piece. */
interface BigFile {
  readonly fd: number;
  readonly path: FsPath;
  readonly size: number;
  /** Pieces not yet read (the fd is closed when this reaches 0). */
  left: number;
  closed: boolean;
}

/** One piece of a large file: read into `buf` in the thread pool. */
interface Piece {
  readonly file: BigFile;
  readonly pos: number;
  readonly len: number;
  started: boolean;
  done: boolean;
  error?: NixcacheError;
  view?: Uint8Array;
  promise?: Promise<void>;
}

/** An output chunk in order: ready bytes, a piece being read, or the error that ended the walk. */
interface Item {
  view?: Uint8Array;
  piece?: Piece;
  error?: unknown;
}

export interface NarProducerOptions {
  readonly signal?: AbortSignal | undefined;
  /** Each chunk is consumed before the next `next()` and handed back with `release` (hashing). */
  readonly reuse: boolean;
  /**
   * With `reuse`: files of `ASYNC_FROM` or more are read ahead in the thread pool (hashing, where
   * the hash runs meanwhile). Otherwise every file is read synchronously into the chunk.
   */
  readonly readAhead?: boolean;
}

/**
 * The NAR of the tree at `root`, produced chunk by chunk with `next()`. The walk runs
 * synchronously between awaits; contents of large files are read in the thread pool while the
 * walk goes on (up to `LOOKAHEAD` bytes ahead), and chunks always come out in archive order.
 * Call `close()` when stopping early or after an error (it waits for reads in flight and
 * closes their files).
 */
export class NarProducer {
  /** NAR bytes handed out so far (at the end: the NAR size). */
  size = 0;
  private readonly buffers: Buffers;
  private readonly reuse: boolean;
  /** Files at least this large are read in the thread pool (only with `readAhead`). */
  private readonly asyncFrom: number;
  private readonly out: ChunkWriter;
  private readonly signal: AbortSignal | undefined;
  private readonly items: (Item | undefined)[] = [];
  private head = 0;
  private queued = 0;
  private readonly toStart: Piece[] = [];
  private startAt = 0;
  private inflight = 0;
  private readonly reading = new Set<Promise<void>>();
  private closing = false;
  private readonly openFiles = new Set<BigFile>();
  /** The file being read synchronously, across steps. */
  private current: { fd: number; path: FsPath; size: number; pos: number } | undefined;
  private readonly stack: Frame[] = [];
  private path: FsPath;
  private depth = 0;
  private listed = UNKNOWN;
  private started = false;
  private finished = false;
  private sinceCheck = 0;

  constructor(root: FsPath, options: NarProducerOptions) {
    this.reuse = options.reuse;
    this.asyncFrom = options.reuse && options.readAhead ? ASYNC_FROM : Number.POSITIVE_INFINITY;
    this.buffers = new Buffers(options.reuse);
    this.signal = options.signal;
    this.path = root;
    const sink = (view: Uint8Array) => {
      this.items.push({ view });
      this.queued += view.length;
    };
    this.out = options.reuse
      ? new ChunkWriter(this.buffers, REUSED_CHUNK, sink)
      : new ChunkWriter(this.buffers, FRESH_CHUNK, sink, FIRST_FRESH_CHUNK);
  }

  /** The next chunk, or undefined after the last. */
  async next(): Promise<Uint8Array | undefined> {
    checkAbort(this.signal);
    for (;;) {
      const item = this.items[this.head];
      if (item !== undefined) {
        const piece = item.piece;
        if (piece === undefined || piece.done) {
          const error = piece === undefined ? item.error : piece.error;
          if (error !== undefined) throw error;
          const view = piece === undefined ? item.view! : piece.view!;
          this.items[this.head++] = undefined;
          if (this.head > 1024 && this.head * 2 > this.items.length) {
            this.items.splice(0, this.head);
            this.head = 0;
          }
          this.queued -= view.length;
          this.size += view.length;
          if (this.startAt < this.toStart.length) this.startReads();
          return view;
        }
      }
      if (
        !this.finished &&
        (item === undefined || (this.queued < LOOKAHEAD && this.openFiles.size < MAX_OPEN))
      ) {
        try {
          this.step();
        } catch (e) {
          // Reported in archive order, after every chunk before it.
          this.finished = true;
          this.items.push({ error: e });
        }
        if (++this.sinceCheck >= 32) {
          this.sinceCheck = 0;
          checkAbort(this.signal);
          while (turnDue()) await turn();
        }
        continue;
      }
      if (item === undefined) return undefined;
      // The head is a piece still being read and the walk may not run further ahead.
      if (item.piece!.promise === undefined) this.startReads(true);
      await item.piece!.promise;
      checkAbort(this.signal);
    }
  }

  /** Hands a chunk's buffer back for reuse (only with `reuse`). */
  release(chunk: Uint8Array): void {
    this.buffers.release(chunk);
  }

  /** Waits for reads in flight and closes every file still open. */
  async close(): Promise<void> {
    this.finished = true;
    this.closing = true;
    await Promise.all([...this.reading]);
    if (this.current !== undefined) {
      const { fd } = this.current;
      this.current = undefined;
      try {
        fs.closeSync(fd);
      } catch {
        // only read
      }
    }
    for (const f of this.openFiles) closeQuietly(f);
    this.openFiles.clear();
    this.items.length = 0;
    this.head = 0;
  }

  /**
   * Reads the current file into the output until it is done (then closes it, ends its node
   * and moves to the next one: true) or a chunk was handed out with more to read (false).
   */
  private readCurrent(): boolean {
    const cur = this.current!;
    const out = this.out;
    const { fd, path, size } = cur;
    let pos = cur.pos;
    try {
      while (pos < size) {
        if (out.len === out.buf.length) {
          out.flush();
          cur.pos = pos;
          return false;
        }
        let got: number;
        try {
          got = fs.readSync(fd, out.buf, out.len, Math.min(size - pos, out.buf.length - out.len), pos);
        } catch (e) {
          throw ioError(e, 'read', path);
        }
        if (got === 0) throw changed(path, pos, size);
        out.len += got;
        pos += got;
      }
    } catch (e) {
      this.current = undefined;
      fs.closeSync(fd);
      throw e;
    }
    this.current = undefined;
    fs.closeSync(fd);
    out.endContents(size);
    if (this.depth > 0) out.put(T_CLOSE);
    this.advance();
    return true;
  }

  /** Writes the node at `path` (and the framing up to the next node, or the end). */
  private step(): void {
    if (this.current !== undefined) {
      this.readCurrent();
      return;
    }
    const out = this.out;
    const path = this.path;
    const depth = this.depth;
    if (!this.started) {
      this.started = true;
      checkAbort(this.signal);
      out.put(T_HEADER);
    }
    // `listed` is what the directory listing said the node is.
    const node = openNode(path, this.listed);
    const kind = node.kind;
    if (kind === REGULAR) {
      const fd = node.fd;
      const st = node.stat!;
      const size = st.size;
      try {
        out.put((st.mode & 0o100) !== 0 ? T_REGULAR_EXECUTABLE : T_REGULAR);
        out.putU64(size);
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
      if (size >= this.asyncFrom) {
        this.readLater(fd, path, size);
        out.endContents(size);
        if (depth > 0) out.put(T_CLOSE);
      } else {
        this.current = { fd, path, size, pos: 0 };
        this.readCurrent(); // moves on to the next node once the file is read
        return;
      }
    } else if (kind === SYMLINK) {
      out.put(T_SYMLINK);
      out.putStr(node.target!);
      out.put(depth > 0 ? T_CLOSE_ENTRY : T_CLOSE);
    } else {
      out.put(T_DIRECTORY);
      const listing = node.listing!;
      const { names } = listing;
      if (names.length > 0 && depth + 1 >= NAR_MAX_DEPTH) {
        throw new NixcacheError(
          'BAD_NAR',
          `path '${show(join(path, names[0]!))}' exceeds maximum NAR directory depth of ${NAR_MAX_DEPTH}`,
          { path: show(path) },
        );
      }
      this.stack.push({ path, listing, index: 0, depth });
    }

    this.advance();
  }

  /** Moves to the next node, the next child of the innermost unfinished directory (or ends). */
  private advance(): void {
    const out = this.out;
    const stack = this.stack;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const { names, types } = top.listing;
      if (top.index < names.length) {
        const i = top.index++;
        const name = names[i]!;
        out.put(T_ENTRY_NAME);
        out.putStr(name);
        out.put(T_NODE_TYPE);
        this.path = join(top.path, name);
        this.listed = types[i]!;
        this.depth = top.depth + 1;
        return;
      }
      stack.pop();
      out.put(top.depth > 0 ? T_CLOSE_ENTRY : T_CLOSE);
    }
    out.finish();
    this.finished = true;
  }

  /** Queues the contents of a large open file as pieces read in the thread pool. */
  private readLater(fd: number, path: FsPath, size: number): void {
    this.out.flush();
    const file: BigFile = { fd, path, size, left: Math.ceil(size / PIECE), closed: false };
    this.openFiles.add(file);
    for (let pos = 0; pos < size; pos += PIECE) {
      const piece: Piece = { file, pos, len: Math.min(PIECE, size - pos), started: false, done: false };
      this.items.push({ piece });
      this.toStart.push(piece);
    }
    this.startReads();
  }

  /**
   * Starts reading the next pieces, in archive order, while fewer than `MAX_INFLIGHT` are being
   * read and the output in memory stays under `LOOKAHEAD` (a slow consumer holds reads back).
   * With `head`, the next piece starts regardless of `LOOKAHEAD`: it is the one the consumer waits for.
   */
  private startReads(head = false): void {
    while (
      !this.closing &&
      this.startAt < this.toStart.length &&
      ((head && this.inflight === 0) || (this.inflight < MAX_INFLIGHT && this.queued < LOOKAHEAD))
    ) {
      head = false;
      const piece = this.toStart[this.startAt++]!;
      if (this.startAt > 1024 && this.startAt * 2 > this.toStart.length) {
        this.toStart.splice(0, this.startAt);
        this.startAt = 0;
      }
      this.inflight++;
      this.queued += piece.len;
      piece.started = true;
      const promise: Promise<void> = this.read(piece).then(
        () => this.settle(piece, promise),
        (e: unknown) => {
          piece.error = e instanceof NixcacheError ? e : ioError(e, 'read', piece.file.path);
          this.settle(piece, promise);
        },
      );
      piece.promise = promise;
      this.reading.add(promise);
    }
  }

  private settle(piece: Piece, promise: Promise<void>): void {
    piece.done = true;
    this.inflight--;
    this.reading.delete(promise);
    const file = piece.file;
    if (--file.left === 0) {
      closeQuietly(file);
      this.openFiles.delete(file);
    }
    this.startReads();
  }

  private read(piece: Piece): Promise<void> {
    const { file, pos, len } = piece;
    const buf = this.buffers.get(this.reuse ? PIECE : len);
    return new Promise((resolve, reject) => {
      const more = (n: number): void => {
        fs.read(file.fd, buf, n, len - n, pos + n, (err, got) => {
          if (err) return reject(ioError(err, 'read', file.path));
          if (got === 0) return reject(changed(file.path, pos + n, file.size));
          if (n + got < len) return more(n + got);
          piece.view = new Uint8Array(buf.buffer, buf.byteOffset, len);
          resolve();
        });
      };
      more(0);
    });
  }
}

function closeQuietly(file: BigFile): void {
  if (file.closed) return;
  file.closed = true;
  try {
    fs.closeSync(file.fd);
  } catch {
    // nothing to do: the file was only read
  }
}
