/**
 * The `file://` storage driver (nix-formats.md §7.4): objects are files under a directory. Writes
 * go to a temporary file that is renamed into place, so a reader never sees half an object.
 * Conditional writes use an exclusive lock file beside the object.
 */
import {
  closeSync,
  createReadStream,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { link, mkdir, open, opendir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NixcacheError, StoreError } from '../errors.js';
import { type ByteSource, toAsyncIterable } from '../internal/iter.js';
import type {
  DeleteManyResult,
  ListedObject,
  ListOptions,
  ObjectBody,
  ObjectInfo,
  PendingUpload,
  PutOptions,
  ReadOptions,
  StorageBackend,
} from './backend.js';
import {
  deleteFileObjects,
  listFileObjects,
  listFileScratch,
  removeFileScratch,
} from './file-housekeeping.js';
import { checkKey } from './layout.js';

let tmpCounter = 0;

/** Files up to this size are read in one synchronous call. */
const SMALL_FILE = 64 * 1024;
/** Bodies given as bytes up to this size are written with synchronous calls. */
const SMALL_WRITE = 1024 * 1024;

function etagOf(s: { mtimeMs: number; size: number; ino: number }): string {
  return `${s.ino}-${s.size}-${s.mtimeMs}`;
}

/**
 * The whole of a small open file, `size` bytes as fstat saw them (fewer if it shrank since), or
 * undefined when it grew since: then it is streamed instead, like any large file.
 */
function readSmall(fd: number, size: number): Uint8Array | undefined {
  const buffer = new Uint8Array(size + 1);
  let length = 0;
  for (;;) {
    const n = readSync(fd, buffer, length, buffer.length - length, null);
    if (n === 0) return buffer.subarray(0, length);
    length += n;
    if (length > size) return undefined;
  }
}

function isErrno(e: unknown, ...codes: string[]): boolean {
  return codes.includes((e as NodeJS.ErrnoException)?.code ?? '');
}

function ioError(location: string, operation: string, key: string, e: unknown): NixcacheError {
  if (e instanceof NixcacheError) return e;
  if ((e as Error)?.name === 'AbortError') {
    return new StoreError(
      'ABORTED',
      `${location}/${key}: ${operation} aborted`,
      { operation, url: location },
      { cause: e },
    );
  }
  return new StoreError(
    'IO',
    `${location}/${key}: ${operation} failed: ${(e as Error).message}`,
    {
      operation,
      url: `${location}/${key}`,
    },
    { cause: e },
  );
}

/** Stores objects as files under `root`. */
export class FileBackend implements StorageBackend {
  readonly location: string;
  readonly conditionalWrites = true;
  readonly #root: string;
  /** Directories known to exist (created or seen by an earlier write). */
  readonly #dirs = new Set<string>();

  constructor(root: string) {
    this.#root = root;
    this.location = `file://${root}`;
  }

  #path(key: string): string {
    return join(this.#root, checkKey(key));
  }

  async get(key: string, options: ReadOptions = {}): Promise<ObjectBody | undefined> {
    const path = this.#path(key);
    let info: ObjectInfo;
    let fd: number | undefined;
    try {
      // Metadata calls are synchronous, as in Nix: a thread-pool round trip costs more than a
      // stat of a local file, and narinfo-sized files are read the same way (see below).
      fd = openSync(path, 'r');
      const s = fstatSync(fd);
      if (!s.isFile()) return undefined;
      info = { size: s.size, etag: etagOf(s) };
      if (s.size <= SMALL_FILE) {
        // Verifying a cache reads thousands of narinfos: open, fstat, read and close on this
        // thread (~10 µs) instead of a stream through the thread pool (~120 µs).
        const bytes = readSmall(fd, s.size);
        if (bytes) {
          return {
            ...info,
            size: bytes.length,
            body: (async function* () {
              yield bytes;
            })(),
          };
        }
        info = { etag: info.etag };
      }
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return undefined;
      throw ioError(this.location, 'read', key, e);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    // A 1 MiB read buffer per narinfo (a few hundred bytes) made listing-sized reads GC-bound.
    const highWaterMark = Math.min(1 << 20, Math.max(16 * 1024, info.size ?? 0));
    const stream = createReadStream(path, { highWaterMark, signal: options.signal });
    const location = this.location;
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of stream) yield chunk as Uint8Array;
      } catch (e) {
        throw ioError(location, 'read', key, e);
      }
    }
    return { ...info, body: body() };
  }

  async head(key: string, _options: ReadOptions = {}): Promise<ObjectInfo | undefined> {
    try {
      // Synchronous, like `get`'s metadata calls: pushes and copies ask about every reference
      // (measured: a copy of 2,000 paths spent 0.35 s in thread-pool stats, now a few ms).
      const s = statSync(this.#path(key), { throwIfNoEntry: false });
      if (s === undefined) return undefined;
      return s.isFile() ? { size: s.size, etag: etagOf(s), lastModified: s.mtimeMs } : undefined;
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return undefined;
      throw ioError(this.location, 'stat', key, e);
    }
  }

  /**
   * Writes an object: into a temporary file beside it, renamed into place. Not fsynced (as Nix's
   * file:// store): a cache's consistency comes from its order of writes, narinfo last.
   */
  async put(key: string, body: ByteSource, options: PutOptions): Promise<ObjectInfo> {
    const path = this.#path(key);
    const tmp = `${path}.tmp.${process.pid}.${tmpCounter++}`;
    if (body instanceof Uint8Array && body.length <= SMALL_WRITE) {
      // undefined: the lock of a conditional write is held by another writer; wait for it below.
      const written = this.#putSmall(key, path, tmp, body, options);
      if (written) return written;
    }
    try {
      await mkdir(dirname(path), { recursive: true });
      const handle = await open(tmp, 'wx', 0o644);
      try {
        for await (const chunk of toAsyncIterable(body)) {
          options.signal?.throwIfAborted();
          await handle.write(chunk);
        }
      } finally {
        await handle.close();
      }
      options.signal?.throwIfAborted();
      if (options.ifNoneMatch) {
        // link() fails if the target exists: create-if-absent without a race.
        try {
          await link(tmp, path);
        } catch (e) {
          if (isErrno(e, 'EEXIST')) throw this.#conflict(key, 'it already exists');
          throw e;
        }
        await unlink(tmp);
      } else if (options.ifMatch !== undefined) {
        await this.#withLock(path, async () => {
          const current = await this.head(key);
          if (current?.etag !== options.ifMatch) throw this.#conflict(key, 'it changed since it was read');
          await rename(tmp, path);
        });
      } else {
        await rename(tmp, path);
      }
      const s = await stat(path);
      return { size: s.size, etag: etagOf(s) };
    } catch (e) {
      await rm(tmp, { force: true });
      throw ioError(this.location, 'write', key, e);
    }
  }

  /**
   * A small object given as bytes (narinfos, listings, most NARs of a system closure): written
   * with synchronous calls, as Nix does, instead of six thread-pool round trips; conditional
   * writes too, with the same link() and lock-file rules as `put`. Undefined (nothing written)
   * when another writer holds the lock.
   */
  #putSmall(
    key: string,
    path: string,
    tmp: string,
    body: Uint8Array,
    options: PutOptions,
  ): ObjectInfo | undefined {
    try {
      options.signal?.throwIfAborted();
      const dir = dirname(path);
      if (!this.#dirs.has(dir)) {
        mkdirSync(dir, { recursive: true });
        this.#dirs.add(dir);
      }
      if (options.ifMatch !== undefined && !options.ifNoneMatch) {
        return this.#replaceSmall(key, path, body, options.ifMatch);
      }
      writeFileSync(tmp, body, { flag: 'wx', mode: 0o644 });
      if (options.ifNoneMatch) {
        // link() fails if the target exists: create-if-absent without a race.
        try {
          linkSync(tmp, path);
        } catch (e) {
          if (isErrno(e, 'EEXIST')) throw this.#conflict(key, 'it already exists');
          throw e;
        }
        unlinkSync(tmp);
      } else {
        renameSync(tmp, path);
      }
      const s = statSync(path);
      return { size: s.size, etag: etagOf(s) };
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // never created, or already renamed
      }
      // The directory may have been removed since (a test, a gc): look again next time.
      this.#dirs.delete(dirname(path));
      throw ioError(this.location, 'write', key, e);
    }
  }

  /**
   * A conditional replace of a small object: its new contents go into `<path>.lock`, created
   * exclusively, so that the one file is both the lock (another writer finds it and waits, as
   * for `#withLock`) and the new object, renamed over the old one once the old one's etag is
   * checked, which also releases the lock. One file created per write, as for an unconditional
   * one (a separate lock file doubled the file creations of `sign --all`). Undefined (nothing
   * written) when another writer holds the lock.
   */
  #replaceSmall(key: string, path: string, body: Uint8Array, ifMatch: string): ObjectInfo | undefined {
    const lock = `${path}.lock`;
    try {
      writeFileSync(lock, body, { flag: 'wx', mode: 0o644 });
    } catch (e) {
      if (isErrno(e, 'EEXIST')) return undefined;
      // Created (exclusively, so ours) but not written whole (ENOSPC, EFBIG): a lock left behind
      // would hold off every later writer of this object.
      rmSync(lock, { force: true });
      throw e;
    }
    try {
      const current = statSync(path, { throwIfNoEntry: false });
      const etag = current?.isFile() ? etagOf(current) : undefined;
      if (etag !== ifMatch) throw this.#conflict(key, 'it changed since it was read');
      renameSync(lock, path);
    } catch (e) {
      rmSync(lock, { force: true });
      throw e;
    }
    const s = statSync(path);
    return { size: s.size, etag: etagOf(s) };
  }

  #conflict(key: string, why: string): NixcacheError {
    return new StoreError('CONFLICT', `${this.location}/${key}: conditional write refused: ${why}`, {
      operation: 'write',
      url: `${this.location}/${key}`,
    });
  }

  async #withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const lock = `${path}.lock`;
    for (let attempt = 0; ; attempt++) {
      try {
        await (await open(lock, 'wx')).close();
        break;
      } catch (e) {
        if (!isErrno(e, 'EEXIST') || attempt > 200) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    try {
      return await fn();
    } finally {
      await rm(lock, { force: true });
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncGenerator<string> {
    const slash = prefix.lastIndexOf('/');
    const dir = slash < 0 ? '' : prefix.slice(0, slash);
    if (dir) checkKey(dir, 'prefix');
    const start = slash < 0 ? prefix : prefix.slice(slash + 1);
    yield* this.#walk(dir, start, options.recursive ?? true, options.signal);
  }

  async *#walk(
    dir: string,
    namePrefix: string,
    recursive: boolean,
    signal?: AbortSignal,
  ): AsyncGenerator<string> {
    // opendir streams the directory in batches (bufferSize entries), so a directory of a million
    // narinfos is never held as one array of names.
    let handle: import('node:fs').Dir;
    try {
      handle = await opendir(join(this.#root, dir), { bufferSize: 256 });
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return;
      throw ioError(this.location, 'list', dir, e);
    }
    try {
      for (;;) {
        let entry: import('node:fs').Dirent | null;
        try {
          entry = await handle.read();
        } catch (e) {
          throw ioError(this.location, 'list', dir, e);
        }
        if (entry === null) break;
        signal?.throwIfAborted();
        const name = entry.name;
        if (!name.startsWith(namePrefix) || name.includes('.tmp.') || name.endsWith('.lock')) continue;
        const key = dir ? `${dir}/${name}` : name;
        if (entry.isFile()) yield key;
        else if (entry.isDirectory() && recursive) yield* this.#walk(key, '', true, signal);
      }
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async delete(key: string, _options: ReadOptions = {}): Promise<void> {
    try {
      await unlink(this.#path(key));
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw ioError(this.location, 'delete', key, e);
    }
  }

  // Housekeeping (gc, repair): see file-housekeeping.ts.

  listObjects(prefix: string, options: ListOptions = {}): AsyncIterable<ListedObject> {
    return listFileObjects(this.#root, this.location, prefix, options);
  }

  deleteMany(keys: readonly string[], options: ReadOptions = {}): Promise<DeleteManyResult> {
    return deleteFileObjects(this.#root, keys, options.signal);
  }

  listPendingUploads(options: ReadOptions = {}): AsyncIterable<PendingUpload> {
    return listFileScratch(this.#root, this.location, options.signal);
  }

  abortPendingUpload(upload: PendingUpload, _options: ReadOptions = {}): Promise<void> {
    return removeFileScratch(this.#root, this.location, upload);
  }
}
