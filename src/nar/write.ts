/**
 * NAR encoding (nix-formats.md §6.1, §6.2): `NarEncoder`, a low-level framing writer shared with
 * the filesystem walkers, and `writeNar`, which turns a pre-order list of entries into NAR bytes
 * and refuses anything hardened Nix would reject (§6.3): bad or unsorted names, bad symlink
 * targets, content of the wrong size, depth of `NAR_MAX_DEPTH` (4096) or more.
 */
import { NixcacheError } from '../errors.js';
import { bytesEqual, compareBytes, utf8 } from '../internal/bytes.js';
import { type ByteSource, toAsyncIterable } from '../internal/iter.js';
import type { NarEntryType } from './read.js';
import {
  encodeStr,
  FRAME,
  NAR_MAX_DEPTH,
  nameProblem,
  padLength,
  showBytes,
  showPath,
  targetProblem,
  writeU64,
} from './wire.js';

/** Content chunks at least this large are passed through instead of copied. */
const PASS_THROUGH = 16 * 1024;
const ZEROS = new Uint8Array(8);

/** Options of `NarEncoder`. */
export interface NarEncoderOptions {
  /** Size of the framing buffer (default 64 KiB). */
  readonly bufferSize?: number;
  /**
   * The sink consumes each chunk before returning (a hasher, say), so the encoder may reuse
   * its buffer. Default false: every chunk handed out is the caller's to keep.
   */
  readonly reuseBuffer?: boolean;
}

/**
 * Low-level NAR framing: call the methods in grammar order and the bytes go to `sink`, small
 * tokens coalesced in a buffer, large content chunks passed through untouched. It does not
 * validate names or order; `writeNar` and the filesystem walkers do.
 *
 * @example
 * const enc = new NarEncoder((b) => hasher.update(b), { reuseBuffer: true });
 * enc.begin(); enc.regular(false, 2); enc.data(bytes); enc.endRegular(2); enc.flush();
 */
export class NarEncoder {
  /** Bytes emitted so far, including those still buffered. */
  size = 0;
  private buf: Uint8Array;
  private len = 0;
  private readonly sink: (bytes: Uint8Array) => void;
  private readonly reuse: boolean;

  constructor(sink: (bytes: Uint8Array) => void, options: NarEncoderOptions = {}) {
    this.sink = sink;
    this.reuse = options.reuseBuffer ?? false;
    this.buf = new Uint8Array(options.bufferSize ?? 64 * 1024);
  }

  /** Appends raw bytes (already framed) to the buffer. */
  put(bytes: Uint8Array): void {
    this.size += bytes.length;
    if (bytes.length > this.buf.length - this.len) {
      this.flush();
      if (bytes.length >= this.buf.length) {
        this.sink(bytes);
        return;
      }
    }
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  private putStr(bytes: Uint8Array): void {
    const total = 8 + bytes.length + padLength(bytes.length);
    if (total > this.buf.length - this.len) {
      this.put(encodeStr(bytes));
      return;
    }
    const at = this.len;
    writeU64(this.buf, at, bytes.length);
    this.buf.set(bytes, at + 8);
    this.buf.fill(0, at + 8 + bytes.length, at + total);
    this.len += total;
    this.size += total;
  }

  private putU64(n: number): void {
    if (this.buf.length - this.len < 8) this.flush();
    writeU64(this.buf, this.len, n);
    this.len += 8;
    this.size += 8;
  }

  /** Hands the buffered bytes to the sink. */
  flush(): void {
    if (this.len === 0) return;
    if (this.reuse) {
      this.sink(this.buf.subarray(0, this.len));
    } else if (this.len < this.buf.length >>> 2) {
      this.sink(this.buf.slice(0, this.len));
    } else {
      this.sink(this.buf.subarray(0, this.len));
      this.buf = new Uint8Array(this.buf.length);
    }
    this.len = 0;
  }

  /** The magic and the root's `( type`. */
  begin(): void {
    this.put(FRAME.header);
  }

  /** `entry ( name <name> node ( type` — a child of the current directory starts. */
  entry(name: Uint8Array): void {
    this.put(FRAME.entryName);
    this.putStr(name);
    this.put(FRAME.nodeType);
  }

  /** `)` closing a child node's entry (after its node was ended). */
  endEntry(): void {
    this.put(FRAME.close);
  }

  /** `regular [executable ""] contents <size>`; the content bytes follow through `data`. */
  regular(executable: boolean, size: number): void {
    this.put(executable ? FRAME.regularExecutable : FRAME.regular);
    this.putU64(size);
  }

  /** Content bytes of the current regular file. */
  data(bytes: Uint8Array): void {
    if (bytes.length >= PASS_THROUGH) {
      this.flush();
      this.size += bytes.length;
      this.sink(bytes);
    } else {
      this.put(bytes);
    }
  }

  /** Padding after `size` content bytes, then `)`. */
  endRegular(size: number): void {
    const pad = padLength(size);
    if (pad > 0) this.put(ZEROS.subarray(0, pad));
    this.put(FRAME.close);
  }

  /** `symlink target <target> )`. */
  symlink(target: Uint8Array): void {
    this.put(FRAME.symlink);
    this.putStr(target);
    this.put(FRAME.close);
  }

  /** `directory`; children follow through `entry`. */
  directory(): void {
    this.put(FRAME.directory);
  }

  /** `)` closing a directory node. */
  endDirectory(): void {
    this.put(FRAME.close);
  }
}

/** One entry for `writeNar`, in NAR (pre-order) order: the root first, then each directory's children sorted. */
export interface NarWriteEntry {
  /** Path relative to the root, names joined with `/` (`''` for the root); bytes for non-UTF-8 names. */
  readonly path: string | Uint8Array;
  /** Raw path bytes; when present they win over `path` (so `readNar` entries pass straight through). */
  readonly rawPath?: Uint8Array;
  readonly type: NarEntryType;
  /** Regular files. */
  readonly executable?: boolean;
  /** Regular files: required when `contents` is a stream; must match the bytes given. */
  readonly size?: number;
  /** Regular files: the contents (absent means empty). */
  readonly contents?: ByteSource;
  /** Symlinks: the target. */
  readonly target?: string;
  /** Symlinks: raw target bytes, winning over `target`. */
  readonly rawTarget?: Uint8Array;
}

/** Options of `writeNar`. */
export interface WriteNarOptions {
  readonly signal?: AbortSignal;
}

function refuse(what: string, path: string, extra: Record<string, unknown> = {}): NixcacheError {
  return new NixcacheError('BAD_NAR', `cannot write NAR: ${what} in ${showPath(path)}`, { path, ...extra });
}

function splitPath(raw: Uint8Array): Uint8Array[] {
  if (raw.length === 0) return [];
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i === raw.length || raw[i] === 0x2f) {
      parts.push(raw.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

interface OpenDir {
  readonly raw: Uint8Array;
  prev: Uint8Array | undefined;
}

/**
 * Encodes entries as a NAR. Entries come in archive order: the root (path `''`) first, every
 * directory before its children, the children of a directory in bytewise ascending order of
 * their names. Output chunks are the caller's to keep; large content chunks pass through
 * uncopied.
 *
 * @throws {NixcacheError} BAD_NAR when the entries would not form a valid NAR: no or several
 *   roots, an entry outside the directory being written, an invalid, duplicate or unsorted
 *   name, a bad symlink target, contents not matching `size`, depth of `NAR_MAX_DEPTH` (4096) or more.
 * @example
 * const nar = writeNar([
 *   { path: '', type: 'directory' },
 *   { path: 'hello', type: 'regular', contents: utf8('Hello\n') },
 *   { path: 'link', type: 'symlink', target: 'hello' },
 * ]);
 */
export async function* writeNar(
  entries: AsyncIterable<NarWriteEntry> | Iterable<NarWriteEntry>,
  options: WriteNarOptions = {},
): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const enc = new NarEncoder((b) => out.push(b));
  const stack: OpenDir[] = [];
  let rootSeen = false;
  let rootClosed = false;
  const { signal } = options;

  for await (const entry of entries as AsyncIterable<NarWriteEntry>) {
    if (signal?.aborted)
      throw new NixcacheError('ABORTED', 'NAR write aborted', {}, { cause: signal.reason });
    const raw = entry.rawPath ?? (typeof entry.path === 'string' ? utf8(entry.path) : entry.path);
    const pathText = typeof entry.path === 'string' ? entry.path : new TextDecoder().decode(raw);
    const parts = splitPath(raw);
    const depth = parts.length;
    if (depth === 0) {
      if (rootSeen) throw refuse('more than one root entry', pathText);
      rootSeen = true;
      enc.begin();
    } else {
      if (!rootSeen) throw refuse('the first entry must be the root (path "")', pathText);
      if (depth >= NAR_MAX_DEPTH) {
        throw refuse(`directory nesting exceeds maximum depth of ${NAR_MAX_DEPTH}`, pathText);
      }
      while (stack.length > depth) {
        stack.pop();
        enc.endDirectory();
        enc.endEntry();
      }
      const parentRaw = raw.subarray(0, Math.max(0, raw.length - parts[depth - 1]!.length - 1));
      const parent = stack[depth - 1];
      if (stack.length < depth || parent === undefined || !bytesEqual(parent.raw, parentRaw)) {
        throw refuse(
          rootClosed || stack.length === 0
            ? 'entry after the root, which is not a directory'
            : 'entry is not inside the directory being written (entries must be in pre-order, parents first)',
          pathText,
        );
      }
      const name = parts[depth - 1]!;
      const problem = nameProblem(name);
      if (problem) throw refuse(`invalid file name ${showBytes(name)} (${problem})`, pathText);
      if (parent.prev !== undefined && compareBytes(parent.prev, name) >= 0) {
        const why = compareBytes(parent.prev, name) === 0 ? 'duplicate name' : 'names not in bytewise order';
        throw refuse(
          `directory is not sorted (${why}: ${showBytes(name)} after ${showBytes(parent.prev)})`,
          pathText,
        );
      }
      parent.prev = name.slice();
      enc.entry(name);
    }

    switch (entry.type) {
      case 'directory':
        enc.directory();
        stack.push({ raw: raw.slice(), prev: undefined });
        break;
      case 'symlink': {
        const target = entry.rawTarget ?? (entry.target === undefined ? undefined : utf8(entry.target));
        if (target === undefined) throw refuse('symlink without a target', pathText);
        const problem = targetProblem(target);
        if (problem) throw refuse(`invalid symlink target ${showBytes(target)}: ${problem}`, pathText);
        enc.symlink(target);
        if (depth > 0) enc.endEntry();
        break;
      }
      case 'regular': {
        yield* writeRegular(enc, entry, pathText, out);
        if (depth > 0) enc.endEntry();
        break;
      }
      default:
        throw refuse(`unknown entry type ${JSON.stringify((entry as { type: unknown }).type)}`, pathText);
    }
    if (depth === 0 && entry.type !== 'directory') rootClosed = true;
    if (out.length > 0) {
      yield* out;
      out.length = 0;
    }
  }
  if (!rootSeen) throw refuse('no entries (a NAR needs a root)', '');
  while (stack.length > 1) {
    stack.pop();
    enc.endDirectory();
    enc.endEntry();
  }
  if (stack.length === 1) enc.endDirectory();
  enc.flush();
  yield* out;
}

async function* writeRegular(
  enc: NarEncoder,
  entry: NarWriteEntry,
  path: string,
  out: Uint8Array[],
): AsyncGenerator<Uint8Array> {
  const { contents } = entry;
  const executable = entry.executable ?? false;
  if (contents === undefined || contents instanceof Uint8Array) {
    const bytes = contents ?? new Uint8Array(0);
    const size = entry.size ?? bytes.length;
    if (size !== bytes.length) {
      throw refuse(`declared size ${size} but ${bytes.length} content bytes given`, path, {
        expected: String(size),
        actual: String(bytes.length),
      });
    }
    enc.regular(executable, size);
    if (size > 0) enc.data(bytes);
    enc.endRegular(size);
    return;
  }
  const size = entry.size;
  if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
    throw refuse('a regular file with streamed contents needs a valid size', path);
  }
  enc.regular(executable, size);
  let seen = 0;
  for await (const chunk of toAsyncIterable(contents)) {
    seen += chunk.length;
    if (seen > size) {
      throw refuse(`contents longer than the declared size ${size}`, path, { expected: String(size) });
    }
    enc.data(chunk);
    if (out.length > 0) {
      yield* out;
      out.length = 0;
    }
  }
  if (seen !== size) {
    throw refuse(`declared size ${size} but ${seen} content bytes given`, path, {
      expected: String(size),
      actual: String(seen),
    });
  }
  enc.endRegular(size);
}
