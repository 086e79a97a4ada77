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
 *   turn every few milliseconds, so it blocks the loop at most for a readdir or a chunk's reads.
 * - Directories are listed with their entry types (d_type), so a child directory or symlink
 *   needs no lstat, and a regular file is opened (O_NOFOLLOW | O_NONBLOCK) and fstat'ed instead
 *   of lstat'ed and opened: one path lookup per file rather than two (open-node.ts).
 * - Small files are read straight into the output chunk (no copy), framing and names (UTF-8
 *   straight from the listed strings) written into the same chunk.
 * - Large files are read synchronously too, one chunk per step, each chunk handed out before
 *   the next is read. Reading them ahead in the thread pool (files of 512 KiB or more in 1 MiB
 *   pieces, two at a time, up to 16 MiB ahead, while the walk and the hashing went on) was
 *   slower and is gone: with fresh chunks, pieces kept alive across awaits made V8 promote them
 *   and run more full GCs; with reused chunks the pieces (16 MiB in rotation) are cold in the
 *   CPU cache where the one reused chunk is warm. `reuseChunks` to /dev/null: 0.19-0.21 s CPU
 *   per dump with read-ahead, 0.15-0.16 s without (3 alternating runs of 8 dumps); `hashPath`:
 *   median 0.45 s wall and 0.47 s CPU with it, 0.41 s and 0.41 s without (7 alternating runs
 *   of 5 hashes; `nix hash path` 0.38-0.45 s), the other core being busy with others' work.
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
 *   148 ms, fresh chunks 164 ms; `nix hash path` 400 ms, `hashPath` 423 ms. A bare loop over
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
import { FRAME, NAR_MAX_DEPTH } from '../wire.js';
import { Buffers, ChunkWriter } from './chunk-writer.js';
import { changed, checkAbort, type FsPath, ioError, join, show } from './fs-path.js';
import { type Listing, REGULAR, SYMLINK, UNKNOWN } from './list-dir.js';
import { openNode } from './open-node.js';

/** Chunk size when chunks are handed out (dumping); each is a fresh buffer. */
export const FRESH_CHUNK = 1024 * 1024;
/** Chunk size when chunks are consumed at once and reused (hashing). */
export const REUSED_CHUNK = 256 * 1024;
/** Give the event loop a turn at least this often (ms). */
const SLICE_MS = 10;

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

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Frame {
  readonly path: FsPath;
  readonly listing: Listing;
  index: number;
  readonly depth: number;
}

/** An output chunk in order, or the error that ended the walk. */
interface Item {
  view?: Uint8Array;
  error?: unknown;
}

export interface NarProducerOptions {
  readonly signal?: AbortSignal | undefined;
  /** Each chunk is consumed before the next `next()` and handed back with `release` (hashing). */
  readonly reuse: boolean;
}

/**
 * The NAR of the tree at `root`, produced chunk by chunk with `next()`. The walk runs
 * synchronously, a step (one node, or one chunk of a file's contents) at a time, until a chunk
 * is full. Call `close()` when stopping early or after an error (it closes the file being read).
 */
export class NarProducer {
  /** NAR bytes handed out so far (at the end: the NAR size). */
  size = 0;
  private readonly buffers: Buffers;
  private readonly out: ChunkWriter;
  private readonly signal: AbortSignal | undefined;
  /** Chunks written and not yet handed out (a step writes one or two). */
  private readonly items: (Item | undefined)[] = [];
  private head = 0;
  /** The file being read synchronously, across steps. */
  private current: { fd: number; path: FsPath; size: number; pos: number } | undefined;
  private readonly stack: Frame[] = [];
  private path: FsPath;
  private depth = 0;
  private listed = UNKNOWN;
  private started = false;
  private finished = false;
  private sliceStart = performance.now();
  private sinceCheck = 0;

  constructor(root: FsPath, options: NarProducerOptions) {
    this.buffers = new Buffers(options.reuse);
    this.signal = options.signal;
    this.path = root;
    this.out = new ChunkWriter(this.buffers, options.reuse ? REUSED_CHUNK : FRESH_CHUNK, (view) => {
      this.items.push({ view });
    });
  }

  /** The next chunk, or undefined after the last. */
  async next(): Promise<Uint8Array | undefined> {
    checkAbort(this.signal);
    for (;;) {
      const items = this.items;
      if (this.head < items.length) {
        const item = items[this.head]!;
        items[this.head++] = undefined;
        if (this.head === items.length) {
          items.length = 0;
          this.head = 0;
        }
        if (item.error !== undefined) throw item.error;
        const view = item.view!;
        this.size += view.length;
        return view;
      }
      if (this.finished) return undefined;
      try {
        this.step();
      } catch (e) {
        // Reported in archive order, after every chunk before it.
        this.finished = true;
        items.push({ error: e });
      }
      if (++this.sinceCheck >= 32) {
        this.sinceCheck = 0;
        checkAbort(this.signal);
        if (performance.now() - this.sliceStart > SLICE_MS) {
          await turn();
          this.sliceStart = performance.now();
        }
      }
    }
  }

  /** Hands a chunk's buffer back for reuse (only with `reuse`). */
  release(chunk: Uint8Array): void {
    this.buffers.release(chunk);
  }

  /** Stops the walk and closes the file being read, if any. */
  async close(): Promise<void> {
    this.finished = true;
    if (this.current !== undefined) {
      const { fd } = this.current;
      this.current = undefined;
      try {
        fs.closeSync(fd);
      } catch {
        // only read
      }
    }
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
      this.current = { fd, path, size, pos: 0 };
      this.readCurrent(); // moves on to the next node once the file is read
      return;
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
    out.flush();
    this.finished = true;
  }
}
