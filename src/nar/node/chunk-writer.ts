/**
 * The output side of the filesystem walk (walk.ts): NAR framing and small file contents written
 * straight into chunks, which are fresh buffers (handed out for good) or come from a pool
 * (consumed, then released and reused).
 */
import { FRAME, writeU64 } from '../wire.js';
import type { FsPath } from './fs-path.js';

const T_CLOSE = FRAME.close;

/** Where buffers come from: fresh ones (handed out for good) or a pool (consumed, then released). */
export class Buffers {
  private readonly pool = new Map<number, ArrayBuffer[]>();
  constructor(private readonly reuse: boolean) {}

  get(size: number): Buffer {
    if (this.reuse) {
      const ab = this.pool.get(size)?.pop();
      if (ab !== undefined) return Buffer.from(ab);
    }
    return Buffer.allocUnsafe(size);
  }

  release(bytes: Uint8Array): void {
    if (!this.reuse) return;
    const ab = bytes.buffer as ArrayBuffer;
    let list = this.pool.get(ab.byteLength);
    if (list === undefined) {
      list = [];
      this.pool.set(ab.byteLength, list);
    }
    if (list.length < 64) list.push(ab);
  }
}

/**
 * Framing and small contents: NAR bytes written into `buf`, a chunk handed to `sink` when it is
 * full (or before a large file's contents, which are read on their own).
 *
 * Chunks may start smaller than `chunkSize` and grow fourfold per chunk up to it (`firstChunk`):
 * a dump hands its chunks out for good, and most store paths of a closure are a few KiB, so a
 * full-size first chunk per dump (and one more after the last) was megabytes of external memory
 * per small path, and V8 ran a full GC every few dozen paths to account for it.
 */
export class ChunkWriter {
  buf: Buffer;
  len = 0;
  private nextSize: number;

  constructor(
    private readonly buffers: Buffers,
    private readonly chunkSize: number,
    private readonly sink: (chunk: Uint8Array) => void,
    firstChunk = chunkSize,
  ) {
    this.buf = buffers.get(firstChunk);
    this.nextSize = Math.min(chunkSize, firstChunk * 4);
  }

  /** Hands out the bytes written so far (if any) and starts a new chunk. */
  flush(): void {
    if (this.len === 0) return;
    this.handOut();
    this.buf = this.buffers.get(this.nextSize);
    this.nextSize = Math.min(this.chunkSize, this.nextSize * 4);
  }

  /** Hands out the bytes written so far (if any), with no chunk after them: the NAR is done. */
  finish(): void {
    if (this.len !== 0) this.handOut();
  }

  private handOut(): void {
    const b = this.buf;
    this.sink(new Uint8Array(b.buffer, b.byteOffset, this.len));
    this.len = 0;
  }

  /** Makes sure `n` bytes are free in the current chunk, flushing first when not. */
  room(n: number): void {
    if (this.buf.length - this.len < n) this.flush();
  }

  /** Appends pre-encoded framing (short: always fits in an empty chunk). */
  put(bytes: Uint8Array): void {
    if (this.buf.length - this.len < bytes.length) this.flush();
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** Appends `str(bytes)` or `str(utf8(text))` for a name or symlink target (at most a few KiB). */
  putStr(s: FsPath): void {
    const max = typeof s === 'string' ? s.length * 3 : s.length;
    this.room(max + 16);
    const b = this.buf;
    const at = this.len;
    const n = typeof s === 'string' ? b.write(s, at + 8) : s.copy(b, at + 8);
    writeU64(b, at, n);
    let end = at + 8 + n;
    for (let i = n & 7; i !== 0 && i < 8; i++) b[end++] = 0;
    this.len = end;
  }

  putU64(n: number): void {
    this.room(8);
    writeU64(this.buf, this.len, n);
    this.len += 8;
  }

  /** Zero padding after `size` content bytes, then `)`. */
  endContents(size: number): void {
    this.room(8 + T_CLOSE.length);
    let end = this.len;
    for (let i = size & 7; i !== 0 && i < 8; i++) this.buf[end++] = 0;
    this.len = end;
    this.put(T_CLOSE);
  }
}
