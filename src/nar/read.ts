/**
 * NAR parsing (nix-formats.md §6.1, §6.3): a synchronous push decoder (`NarDecoder`) that
 * enforces every rule of hardened Nix's parser, and the pull-based `readNar` stream of entries
 * built on it. Memory stays bounded whatever a length field claims: strings are length-checked
 * before they are read and file contents are passed through as sub-arrays of the input chunks.
 *
 * Trailing bytes after the root node are rejected by default (Nix leaves them unread): a cache
 * verifier wants NarHash/NarSize to cover exactly one archive. `allowTrailingBytes` restores
 * Nix's behaviour.
 */
import { NixcacheError } from '../errors.js';
import { bytesEqual, compareBytes } from '../internal/bytes.js';
import { type ByteSource, toAsyncIterable } from '../internal/iter.js';
import {
  NAR_MAX_DEPTH,
  NAR_MAX_NAME_LENGTH,
  NAR_MAX_TAG_LENGTH,
  NAR_MAX_TARGET_LENGTH,
  nameProblem,
  padLength,
  readU64,
  showBytes,
  showPath,
  TAG,
  targetProblem,
} from './wire.js';

/** The three kinds of NAR node. */
export type NarEntryType = 'regular' | 'symlink' | 'directory';

/** A node header as the decoder reports it (no contents). */
export interface NarNode {
  /** Path relative to the root, names joined with `/`; `''` for the root. Names decoded as UTF-8 (lossy). */
  readonly path: string;
  /** The same path as raw bytes (exact even for names that are not UTF-8). */
  readonly rawPath: Uint8Array;
  /** Number of path components (0 for the root). */
  readonly depth: number;
  readonly type: NarEntryType;
  /** Regular files: whether the executable marker is present. */
  readonly executable?: boolean;
  /** Regular files: content length in bytes. */
  readonly size?: number;
  /** Regular files: offset in the NAR of the first content byte. */
  readonly narOffset?: number;
  /** Symlinks: the target, decoded as UTF-8 (lossy). */
  readonly target?: string;
  /** Symlinks: the target as raw bytes. */
  readonly rawTarget?: Uint8Array;
}

/** One entry of `readNar`: a node header plus, for regular files, its contents. */
export interface NarEntry extends NarNode {
  /**
   * Regular files: the contents as chunks (sub-arrays of the input, not copies). Iterate it at
   * most once, before asking for the next entry; unread contents are skipped automatically.
   */
  readonly contents?: AsyncIterable<Uint8Array>;
}

/** Callbacks of `NarDecoder`, called synchronously, in archive order. */
export interface NarVisitor {
  /** A node starts (directories: before their children; files: before their contents). */
  node?(node: NarNode): void;
  /** Some content bytes of the current regular file (a view into the input chunk). */
  contents?(bytes: Uint8Array): void;
  /** A node ends (files after their contents, directories after their last child). */
  end?(node: NarNode): void;
}

/** Options of the NAR readers. */
export interface ReadNarOptions {
  /** Accept and ignore bytes after the root node, as Nix does. Default false: they are an error. */
  readonly allowTrailingBytes?: boolean;
  /** Aborts the read with an ABORTED error. */
  readonly signal?: AbortSignal;
}

// What the next primitive is (grammar position).
const G_MAGIC = 0;
const G_OPEN = 1;
const G_TYPE_TAG = 2;
const G_TYPE = 3;
const G_REGULAR_TAG = 4;
const G_EXECUTABLE_VALUE = 5;
const G_CONTENTS_TAG = 6;
const G_CONTENTS = 7;
const G_CLOSE = 8;
const G_TARGET_TAG = 9;
const G_TARGET = 10;
const G_DIR_TAG = 11;
const G_ENTRY_OPEN = 12;
const G_NAME_TAG = 13;
const G_NAME = 14;
const G_NODE_TAG = 15;
const G_ENTRY_CLOSE = 16;
const G_DONE = 17;

// What the byte loop is doing.
const M_LENGTH = 0;
const M_STRING = 1;
const M_DATA = 2;
const M_PADDING = 3;
const M_DONE = 4;
const M_FAILED = 5;

const EXPECTED_TAG: Record<number, string> = {
  [G_OPEN]: "'('",
  [G_TYPE_TAG]: "'type'",
  [G_REGULAR_TAG]: "'contents'",
  [G_CONTENTS_TAG]: "'contents'",
  [G_CLOSE]: "')'",
  [G_TARGET_TAG]: "'target'",
  [G_DIR_TAG]: "'entry' or ')'",
  [G_ENTRY_OPEN]: "'('",
  [G_NAME_TAG]: "'name'",
  [G_NODE_TAG]: "'node'",
  [G_ENTRY_CLOSE]: "')'",
};

interface Frame {
  readonly node: NarNode;
  prev: Uint8Array | undefined;
}

const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);
const SLASH = 0x2f;

/**
 * Incremental NAR decoder: feed chunks with `write`, then call `end`. Validates as it goes and
 * reports nodes and content bytes to a visitor, synchronously, without buffering contents.
 *
 * @throws {NixcacheError} BAD_NAR from `write`/`end`, with `data.offset` and `data.path`.
 * @example
 * const d = new NarDecoder({ node: (n) => console.log(n.path, n.type) });
 * for (const chunk of chunks) d.write(chunk);
 * d.end();
 */
export class NarDecoder {
  private pos = 0;
  private mode = M_LENGTH;
  private g = G_MAGIC;
  private readonly lenBuf = new Uint8Array(8);
  private lenHave = 0;
  private tokenStart = 0;
  private readonly strBuf = new Uint8Array(NAR_MAX_TARGET_LENGTH + 8);
  private strLen = 0;
  private strTotal = 0;
  private strHave = 0;
  private dataLeft = 0;
  private padLeft = 0;
  private readonly stack: Frame[] = [];
  private current: NarNode;
  private executable = false;
  private childName: Uint8Array = EMPTY;
  private readonly visitor: NarVisitor;
  private readonly allowTrailing: boolean;

  constructor(visitor: NarVisitor = {}, options: ReadNarOptions = {}) {
    this.visitor = visitor;
    this.allowTrailing = options.allowTrailingBytes ?? false;
    this.current = { path: '', rawPath: EMPTY, depth: 0, type: 'directory' };
  }

  /** Bytes of the archive consumed so far (trailing bytes never count). */
  get offset(): number {
    return this.pos;
  }

  /** True once the root node has been closed. */
  get done(): boolean {
    return this.mode === M_DONE;
  }

  /**
   * Feeds the next chunk. Content bytes reach the visitor as views into `chunk`.
   *
   * @throws {NixcacheError} BAD_NAR on the first rule the input breaks.
   */
  write(chunk: Uint8Array): void {
    if (this.mode === M_FAILED) throw this.fail('decoder used after an error', this.pos);
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.mode) {
        case M_LENGTH: {
          let len: number;
          if (this.lenHave === 0 && n - i >= 8) {
            this.tokenStart = this.pos;
            len = readU64(chunk, i);
            i += 8;
            this.pos += 8;
          } else {
            if (this.lenHave === 0) this.tokenStart = this.pos;
            const take = Math.min(8 - this.lenHave, n - i);
            this.lenBuf.set(chunk.subarray(i, i + take), this.lenHave);
            this.lenHave += take;
            i += take;
            this.pos += take;
            if (this.lenHave < 8) break;
            this.lenHave = 0;
            len = readU64(this.lenBuf, 0);
          }
          this.onLength(len);
          break;
        }
        case M_STRING: {
          const total = this.strTotal;
          if (this.strHave === 0 && n - i >= total) {
            this.checkPadding(chunk, i + this.strLen, i + total, this.pos + this.strLen);
            const tok = chunk.subarray(i, i + this.strLen);
            i += total;
            this.pos += total;
            this.mode = M_LENGTH;
            this.onString(tok);
          } else {
            const take = Math.min(total - this.strHave, n - i);
            this.strBuf.set(chunk.subarray(i, i + take), this.strHave);
            this.strHave += take;
            i += take;
            this.pos += take;
            if (this.strHave < total) break;
            this.strHave = 0;
            this.checkPadding(this.strBuf, this.strLen, total, this.pos - total + this.strLen);
            this.mode = M_LENGTH;
            this.onString(this.strBuf.subarray(0, this.strLen));
          }
          break;
        }
        case M_DATA: {
          const take = Math.min(this.dataLeft, n - i);
          const bytes = i === 0 && take === n ? chunk : chunk.subarray(i, i + take);
          i += take;
          this.pos += take;
          this.dataLeft -= take;
          this.visitor.contents?.(bytes);
          if (this.dataLeft === 0) this.afterData();
          break;
        }
        case M_PADDING: {
          const take = Math.min(this.padLeft, n - i);
          this.checkPadding(chunk, i, i + take, this.pos);
          i += take;
          this.pos += take;
          this.padLeft -= take;
          if (this.padLeft === 0) this.afterContents();
          break;
        }
        case M_DONE: {
          // Trailing bytes are not counted in `offset`: it is always the archive's size so far.
          if (this.allowTrailing) return;
          throw this.fail('unexpected data after the end of the archive', this.pos, { path: '' });
        }
        default:
          throw this.fail('decoder used after an error', this.pos);
      }
    }
  }

  /**
   * Signals the end of input.
   *
   * @throws {NixcacheError} BAD_NAR when the archive is incomplete (truncated).
   */
  end(): void {
    if (this.mode === M_DONE) return;
    const what =
      this.mode === M_DATA
        ? `file contents (${this.dataLeft} more bytes expected)`
        : this.mode === M_STRING
          ? 'a string'
          : this.mode === M_PADDING
            ? 'padding'
            : this.lenHave > 0
              ? 'a length field'
              : 'the next token';
    throw this.fail(`truncated archive: unexpected end of input while reading ${what}`, this.pos);
  }

  private fail(what: string, offset: number, extra: Record<string, unknown> = {}): NixcacheError {
    this.mode = M_FAILED;
    const path = (extra.path as string | undefined) ?? this.current.path;
    return new NixcacheError(
      'BAD_NAR',
      `bad archive: ${what} at byte offset ${offset} in ${showPath(path)}`,
      {
        offset,
        path,
        ...extra,
      },
    );
  }

  private checkPadding(bytes: Uint8Array, from: number, to: number, offset: number): void {
    for (let k = from; k < to; k++) {
      if (bytes[k] !== 0) throw this.fail('non-zero padding', offset + (k - from));
    }
  }

  private onLength(len: number): void {
    const g = this.g;
    if (g === G_CONTENTS) {
      if (!Number.isFinite(len))
        throw this.fail(
          'file size of 2^53 bytes or more cannot be real: the archive is truncated or corrupt',
          this.tokenStart,
        );
      const node: NarNode = {
        path: this.current.path,
        rawPath: this.current.rawPath,
        depth: this.current.depth,
        type: 'regular',
        executable: this.executable,
        size: len,
        narOffset: this.pos,
      };
      this.current = node;
      this.visitor.node?.(node);
      this.dataLeft = len;
      this.padLeft = padLength(len);
      if (len === 0) this.afterData();
      else this.mode = M_DATA;
      return;
    }
    const limit =
      g === G_MAGIC
        ? 13
        : g === G_NAME
          ? NAR_MAX_NAME_LENGTH
          : g === G_TARGET
            ? NAR_MAX_TARGET_LENGTH
            : NAR_MAX_TAG_LENGTH;
    if (len > limit) {
      if (g === G_MAGIC) throw this.fail("input doesn't look like a Nix archive", 0);
      const what = g === G_NAME ? 'file name' : g === G_TARGET ? 'symlink target' : 'tag';
      const shown = Number.isFinite(len) ? `${len} bytes` : 'over 2^53 bytes';
      throw this.fail(`string is too long: ${what} of ${shown} (max ${limit})`, this.tokenStart, {
        actual: String(len),
      });
    }
    this.strLen = len;
    this.strTotal = len + padLength(len);
    this.strHave = 0;
    if (len === 0) this.onString(EMPTY);
    else this.mode = M_STRING;
  }

  private afterData(): void {
    if (this.padLeft > 0) this.mode = M_PADDING;
    else this.afterContents();
  }

  private afterContents(): void {
    this.mode = M_LENGTH;
    this.g = G_CLOSE;
  }

  private expectTag(tok: Uint8Array, tag: Uint8Array): void {
    if (!bytesEqual(tok, tag)) {
      throw this.fail(`expected tag ${EXPECTED_TAG[this.g]}, got ${showBytes(tok)}`, this.tokenStart, {
        expected: EXPECTED_TAG[this.g],
        actual: decoder.decode(tok),
      });
    }
  }

  private onString(tok: Uint8Array): void {
    switch (this.g) {
      case G_MAGIC:
        if (!bytesEqual(tok, TAG.magic)) throw this.fail("input doesn't look like a Nix archive", 0);
        this.g = G_OPEN;
        return;
      case G_OPEN:
        this.expectTag(tok, TAG.open);
        this.g = G_TYPE_TAG;
        return;
      case G_TYPE_TAG:
        this.expectTag(tok, TAG.type);
        this.g = G_TYPE;
        return;
      case G_TYPE:
        this.onType(tok);
        return;
      case G_REGULAR_TAG:
        if (bytesEqual(tok, TAG.executable)) {
          this.g = G_EXECUTABLE_VALUE;
          return;
        }
        this.expectTag(tok, TAG.contents);
        this.g = G_CONTENTS;
        return;
      case G_EXECUTABLE_VALUE:
        if (tok.length !== 0) {
          throw this.fail(`executable marker must be empty, got ${showBytes(tok)}`, this.tokenStart);
        }
        this.executable = true;
        this.g = G_CONTENTS_TAG;
        return;
      case G_CONTENTS_TAG:
        this.expectTag(tok, TAG.contents);
        this.g = G_CONTENTS;
        return;
      case G_CLOSE:
        this.expectTag(tok, TAG.close);
        this.endNode();
        return;
      case G_TARGET_TAG:
        this.expectTag(tok, TAG.target);
        this.g = G_TARGET;
        return;
      case G_TARGET: {
        const problem = targetProblem(tok);
        if (problem)
          throw this.fail(
            `NAR contains invalid symlink target ${showBytes(tok)}: ${problem}`,
            this.tokenStart,
          );
        const rawTarget = tok.slice();
        const node: NarNode = {
          ...this.current,
          type: 'symlink',
          target: decoder.decode(rawTarget),
          rawTarget,
        };
        this.current = node;
        this.visitor.node?.(node);
        this.g = G_CLOSE;
        return;
      }
      case G_DIR_TAG:
        if (bytesEqual(tok, TAG.close)) {
          this.stack.pop();
          this.endNode();
          return;
        }
        this.expectTag(tok, TAG.entry);
        this.g = G_ENTRY_OPEN;
        return;
      case G_ENTRY_OPEN:
        this.expectTag(tok, TAG.open);
        this.g = G_NAME_TAG;
        return;
      case G_NAME_TAG:
        this.expectTag(tok, TAG.name);
        this.g = G_NAME;
        return;
      case G_NAME:
        this.onName(tok);
        return;
      case G_NODE_TAG:
        this.expectTag(tok, TAG.node);
        this.enterChild();
        return;
      case G_ENTRY_CLOSE:
        this.expectTag(tok, TAG.close);
        this.g = G_DIR_TAG;
        return;
      default:
        throw this.fail('internal error: unexpected state', this.tokenStart);
    }
  }

  private onType(tok: Uint8Array): void {
    if (bytesEqual(tok, TAG.regular)) {
      this.executable = false;
      this.g = G_REGULAR_TAG;
    } else if (bytesEqual(tok, TAG.symlink)) {
      this.g = G_TARGET_TAG;
    } else if (bytesEqual(tok, TAG.directory)) {
      const node: NarNode = {
        path: this.current.path,
        rawPath: this.current.rawPath,
        depth: this.current.depth,
        type: 'directory',
      };
      this.current = node;
      this.stack.push({ node, prev: undefined });
      this.visitor.node?.(node);
      this.g = G_DIR_TAG;
    } else {
      throw this.fail(`unknown file type ${showBytes(tok)}`, this.tokenStart, {
        actual: decoder.decode(tok),
      });
    }
  }

  private onName(tok: Uint8Array): void {
    const frame = this.stack[this.stack.length - 1]!;
    const problem = nameProblem(tok);
    if (problem) {
      throw this.fail(`NAR contains invalid file name ${showBytes(tok)} (${problem})`, this.tokenStart, {
        path: frame.node.path,
        actual: decoder.decode(tok),
      });
    }
    if (frame.prev !== undefined && compareBytes(frame.prev, tok) >= 0) {
      const why = compareBytes(frame.prev, tok) === 0 ? 'duplicate name' : 'unsorted names';
      throw this.fail(
        `NAR directory is not sorted (${why}: ${showBytes(tok)} after ${showBytes(frame.prev)})`,
        this.tokenStart,
        { path: frame.node.path, actual: decoder.decode(tok) },
      );
    }
    const name = tok.slice();
    frame.prev = name;
    this.childName = name;
    this.g = G_NODE_TAG;
  }

  private enterChild(): void {
    const parent = this.stack[this.stack.length - 1]!.node;
    const name = this.childName;
    const depth = parent.depth + 1;
    let rawPath: Uint8Array;
    let path: string;
    if (depth === 1) {
      rawPath = name;
      path = decoder.decode(name);
    } else {
      rawPath = new Uint8Array(parent.rawPath.length + 1 + name.length);
      rawPath.set(parent.rawPath, 0);
      rawPath[parent.rawPath.length] = SLASH;
      rawPath.set(name, parent.rawPath.length + 1);
      path = `${parent.path}/${decoder.decode(name)}`;
    }
    this.current = { path, rawPath, depth, type: 'directory' };
    if (depth >= NAR_MAX_DEPTH) {
      throw this.fail(`NAR directory nesting exceeds maximum depth of ${NAR_MAX_DEPTH}`, this.tokenStart);
    }
    this.g = G_OPEN;
  }

  private endNode(): void {
    this.visitor.end?.(this.current);
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) {
      this.g = G_DONE;
      this.mode = M_DONE;
    } else {
      this.current = top.node;
      this.g = G_ENTRY_CLOSE;
    }
  }
}

function abortError(signal: AbortSignal): NixcacheError {
  return new NixcacheError('ABORTED', 'NAR read aborted', {}, { cause: signal.reason });
}

/**
 * Feeds a whole source through a `NarDecoder` with `visitor`; resolves with the NAR size once
 * the archive is complete and valid.
 *
 * @throws {NixcacheError} BAD_NAR on invalid or truncated input; ABORTED when `signal` fires.
 * @example const size = await decodeNar(bytes, { node: (n) => paths.push(n.path) });
 */
export async function decodeNar(
  source: ByteSource,
  visitor: NarVisitor = {},
  options: ReadNarOptions = {},
): Promise<number> {
  const d = new NarDecoder(visitor, options);
  const { signal } = options;
  const it = toAsyncIterable(source)[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const r = await it.next();
      if (r.done) break;
      d.write(r.value);
      if (d.done && options.allowTrailingBytes) {
        await it.return?.();
        break;
      }
    }
  } catch (e) {
    await it.return?.()?.catch(() => {});
    throw e;
  }
  d.end();
  return d.offset;
}

type QueueItem = { readonly node: NarNode } | { readonly data: Uint8Array } | { readonly error: unknown };

/**
 * Parses a NAR stream into its entries, in archive (pre-order) order: the root first, each
 * directory before its children. Pull-based: input is read only as entries and contents are
 * requested. An invalid archive yields the valid entries before the problem, then throws.
 *
 * @throws {NixcacheError} BAD_NAR (with `data.offset`, `data.path`) on any violation of the
 *   format or of hardened Nix's rules, including truncation and (by default) trailing bytes.
 * @example
 * for await (const e of readNar(stream)) {
 *   if (e.type === 'regular') for await (const chunk of e.contents!) use(chunk);
 * }
 */
export async function* readNar(source: ByteSource, options: ReadNarOptions = {}): AsyncGenerator<NarEntry> {
  const input = toAsyncIterable(source)[Symbol.asyncIterator]();
  const queue: QueueItem[] = [];
  let head = 0;
  let finished = false;
  const dec = new NarDecoder(
    {
      node: (node) => queue.push({ node }),
      contents: (data) => queue.push({ data }),
    },
    options,
  );
  const { signal } = options;

  // Reads one more chunk into the queue; false once nothing more can arrive.
  const fill = async (): Promise<boolean> => {
    if (finished) return false;
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    }
    try {
      if (signal?.aborted) throw abortError(signal);
      const r = await input.next();
      if (r.done) {
        finished = true;
        dec.end();
      } else {
        dec.write(r.value);
        if (dec.done && options.allowTrailingBytes) {
          finished = true;
          await input.return?.();
        }
      }
    } catch (error) {
      finished = true;
      queue.push({ error });
      await input.return?.()?.catch(() => {});
    }
    return true;
  };

  // The file whose contents are pending: how many bytes are still unread.
  let pending: { remaining: number; live: boolean } | undefined;

  let failure: { error: unknown } | undefined;
  // The next node or data item; throws the decoder's error when it is reached.
  const nextItem = async (): Promise<{ node: NarNode } | { data: Uint8Array } | undefined> => {
    if (failure) throw failure.error;
    while (head === queue.length) if (!(await fill())) return undefined;
    const item = queue[head++]!;
    if ('error' in item) {
      failure = item;
      throw item.error;
    }
    return item;
  };

  async function* contents(state: { remaining: number; live: boolean }): AsyncGenerator<Uint8Array> {
    if (!state.live)
      throw new NixcacheError('BAD_ARGUMENT', 'NAR entry contents read after moving to the next entry');
    while (state.remaining > 0) {
      const item = await nextItem();
      if (item === undefined || 'node' in item) throw new Error('internal error: NAR contents out of step');
      state.remaining -= item.data.length;
      yield item.data;
    }
  }

  try {
    for (;;) {
      if (pending !== undefined) {
        while (pending.remaining > 0) {
          const item = await nextItem();
          if (item === undefined || 'node' in item)
            throw new Error('internal error: NAR contents out of step');
          pending.remaining -= item.data.length;
        }
        pending.live = false;
        pending = undefined;
      }
      const item = await nextItem();
      if (item === undefined) return;
      if ('data' in item) throw new Error('internal error: NAR contents out of step');
      const node = item.node;
      if (node.type === 'regular') {
        const state = { remaining: node.size!, live: true };
        pending = state;
        let used = false;
        const iterable: AsyncIterable<Uint8Array> = {
          [Symbol.asyncIterator]: () => {
            if (used) throw new NixcacheError('BAD_ARGUMENT', 'NAR entry contents can be read only once');
            used = true;
            return contents(state);
          },
        };
        yield { ...node, contents: iterable };
      } else {
        yield node;
      }
    }
  } finally {
    if (!finished) await input.return?.();
  }
}
