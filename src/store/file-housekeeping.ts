/**
 * Housekeeping for the `file://` storage driver (the optional part of the StorageBackend
 * contract that gc and repair use): listings with size and mtime, batch deletes, and the
 * temporary files (`<key>.tmp.<pid>.<n>`) and lock files (`<key>.lock`) that an interrupted
 * writer leaves behind, which play the part of S3's incomplete multipart uploads.
 */
import { type Dirent, lstatSync, unlinkSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NixcacheError, StoreError } from '../errors.js';
import type { DeleteManyResult, ListedObject, PendingUpload } from './backend.js';
import { checkKey } from './layout.js';

/** The marker `FileBackend.put` puts in the names of its temporary files. */
const TMP_MARK = '.tmp.';
const LOCK_SUFFIX = '.lock';

function isErrno(e: unknown, ...codes: string[]): boolean {
  return codes.includes((e as NodeJS.ErrnoException)?.code ?? '');
}

function ioError(location: string, operation: string, key: string, e: unknown): NixcacheError {
  if (e instanceof NixcacheError) return e;
  return new StoreError(
    'IO',
    `${location}/${key}: ${operation} failed: ${(e as Error).message}`,
    { operation, url: `${location}/${key}` },
    { cause: e },
  );
}

/** Whether a file name is a writer's temporary or lock file rather than an object. */
function isScratch(name: string): boolean {
  return name.includes(TMP_MARK) || name.endsWith(LOCK_SUFFIX);
}

/** Walks `dir` (relative to root), yielding every regular file with its lstat. */
async function* walk(
  root: string,
  location: string,
  dir: string,
  namePrefix: string,
  recursive: boolean,
  signal: AbortSignal | undefined,
): AsyncGenerator<{ key: string; name: string; size: number; mtimeMs: number }> {
  let entries: Dirent[];
  try {
    entries = await readdir(join(root, dir), { withFileTypes: true });
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return;
    throw ioError(location, 'list', dir, e);
  }
  for (const entry of entries) {
    signal?.throwIfAborted();
    if (!entry.name.startsWith(namePrefix)) continue;
    const key = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isFile()) {
      // Synchronous, as in file.ts: a thread-pool round trip per file costs ~10x a local lstat.
      let s: { size: number; mtimeMs: number } | undefined;
      try {
        s = lstatSync(join(root, key), { throwIfNoEntry: false });
      } catch (e) {
        throw ioError(location, 'stat', key, e);
      }
      if (!s) continue; // deleted since readdir
      yield { key, name: entry.name, size: s.size, mtimeMs: s.mtimeMs };
    } else if (entry.isDirectory() && recursive) {
      yield* walk(root, location, key, '', true, signal);
    }
  }
}

/**
 * Every object under `prefix` with its size and mtime (temporary and lock files excluded).
 *
 * @throws {NixcacheError} IO when a directory cannot be read; BAD_ARGUMENT for a bad prefix.
 * @example for await (const o of listFileObjects('/srv/cache', 'file:///srv/cache', 'nar/')) …
 */
export async function* listFileObjects(
  root: string,
  location: string,
  prefix: string,
  options: { recursive?: boolean; signal?: AbortSignal } = {},
): AsyncGenerator<ListedObject> {
  const slash = prefix.lastIndexOf('/');
  const dir = slash < 0 ? '' : prefix.slice(0, slash);
  if (dir) checkKey(dir, 'prefix');
  const start = slash < 0 ? prefix : prefix.slice(slash + 1);
  for await (const f of walk(root, location, dir, start, options.recursive ?? true, options.signal)) {
    if (!isScratch(f.name)) yield { key: f.key, size: f.size, lastModified: f.mtimeMs };
  }
}

/**
 * Unlinks each key; absent keys count as deleted, other failures are returned per key.
 *
 * @throws {NixcacheError} ABORTED when the signal fires; BAD_ARGUMENT for a bad key.
 * @example await deleteFileObjects('/srv/cache', 'file:///srv/cache', ['x.narinfo'])
 */
export async function deleteFileObjects(
  root: string,
  keys: readonly string[],
  signal?: AbortSignal,
): Promise<DeleteManyResult> {
  const deleted: string[] = [];
  const errors: { key: string; code: string; message: string }[] = [];
  for (const key of keys) {
    signal?.throwIfAborted();
    try {
      // Synchronous: batches are at most 1000 keys, and a local unlink costs less than the
      // thread-pool round trip of the async call.
      unlinkSync(join(root, checkKey(key)));
      deleted.push(key);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) deleted.push(key);
      else
        errors.push({ key, code: (e as NodeJS.ErrnoException).code ?? 'IO', message: (e as Error).message });
    }
  }
  return { deleted, errors };
}

/**
 * The temporary files (`<key>.tmp.<pid>.<n>`) and lock files (`<key>.lock`) under the cache: what
 * an interrupted writer leaves behind. `key` is the object they were for, `uploadId` the scratch
 * file's own key, `initiated` its mtime.
 *
 * @throws {NixcacheError} IO when a directory cannot be read.
 * @example for await (const u of listFileScratch('/srv/cache', 'file:///srv/cache')) …
 */
export async function* listFileScratch(
  root: string,
  location: string,
  signal?: AbortSignal,
): AsyncGenerator<PendingUpload> {
  for await (const f of walk(root, location, '', '', true, signal)) {
    if (!isScratch(f.name)) continue;
    const at = f.key.indexOf(TMP_MARK, f.key.lastIndexOf('/') + 1);
    const key = at >= 0 ? f.key.slice(0, at) : f.key.slice(0, -LOCK_SUFFIX.length);
    yield { key, uploadId: f.key, initiated: f.mtimeMs };
  }
}

/**
 * Removes one scratch file found by {@link listFileScratch}; absent is fine.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when `uploadId` is not a scratch file; IO on failure.
 * @example await removeFileScratch('/srv/cache', 'file:///srv/cache', upload)
 */
export async function removeFileScratch(
  root: string,
  location: string,
  upload: PendingUpload,
): Promise<void> {
  const name = upload.uploadId.slice(upload.uploadId.lastIndexOf('/') + 1);
  if (!isScratch(name)) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `${location}/${upload.uploadId} is not a temporary or lock file`,
      {
        url: `${location}/${upload.uploadId}`,
      },
    );
  }
  try {
    await unlink(join(root, checkKey(upload.uploadId)));
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw ioError(location, 'delete', upload.uploadId, e);
  }
}
