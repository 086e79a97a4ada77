/**
 * `restorePath`: unpacks a NAR onto the filesystem like `nix-store --restore`, hardened against
 * the path-traversal class of CVE-2024-45593 (nix-formats.md §6.3, §11): the archive is
 * validated while it streams (names, order, duplicates, depth), the target must not exist, every
 * entry is created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdir` and `symlink` failing on an
 * existing name), symlinks are never followed, and after any failure everything created is
 * removed again. Node only.
 */
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { NixcacheError } from '../../errors.js';
import type { ByteSource } from '../../internal/iter.js';
import { type ReadNarOptions, readNar } from '../read.js';

/** Options of `restorePath`. */
export interface RestorePathOptions extends ReadNarOptions {}

const O_CREATE =
  fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | (fs.constants.O_NOFOLLOW ?? 0);

function show(p: Buffer): string {
  return p.toString('utf8');
}

function fsError(e: unknown, op: string, p: Buffer, entry: string): NixcacheError {
  const err = e as NodeJS.ErrnoException;
  const exists = err.code === 'EEXIST';
  return new NixcacheError(
    exists ? 'CONFLICT' : 'IO',
    exists
      ? `cannot ${op} '${show(p)}': it already exists`
      : `cannot ${op} '${show(p)}': ${err.code ?? err.message}`,
    { path: entry, file: show(p), operation: op },
    { cause: e },
  );
}

/**
 * Restores the NAR read from `source` at `targetDir`, which must not exist yet (its parent
 * must). Regular files get mode 0666 minus the umask, plus the execute bits when the archive
 * marks them executable; directories 0777 minus the umask; symlinks are created as given.
 * On any error — invalid archive, I/O failure, abort — the partially restored tree is removed
 * before the error is rethrown; nothing outside `targetDir` is ever touched.
 *
 * @throws {NixcacheError} BAD_ARGUMENT when `targetDir` is empty or ends in `/`, `.` or `..`;
 *   CONFLICT when `targetDir` exists, BAD_NAR for an invalid archive
 *   (before anything unsafe could be created), IO for filesystem errors, ABORTED.
 * @example await restorePath(createReadStream('x.nar'), '/tmp/out');
 */
export async function restorePath(
  source: ByteSource,
  targetDir: string,
  options: RestorePathOptions = {},
): Promise<void> {
  // resolve() would turn `out/.` into `out` and `out/` into `out`; Nix creates the name as given,
  // so a target that does not end in a name it could create is refused before anything is read.
  const last = targetDir.slice(targetDir.lastIndexOf('/') + 1);
  if (last === '' || last === '.' || last === '..') {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `cannot restore to '${targetDir}': the target must end in the name of a new file or directory, not ${last === '' ? "'/' (or be empty)" : `'${last}'`}`,
      { file: targetDir, field: 'target' },
    );
  }
  const target = Buffer.from(resolve(targetDir));
  let created = false;
  try {
    for await (const entry of readNar(source, options)) {
      const p = entry.depth === 0 ? target : Buffer.concat([target, Buffer.from('/'), entry.rawPath]);
      if (entry.type === 'directory') {
        try {
          await fs.promises.mkdir(p, 0o777);
        } catch (e) {
          throw fsError(e, 'create directory', p, entry.path);
        }
      } else if (entry.type === 'symlink') {
        const t = entry.rawTarget!;
        try {
          await fs.promises.symlink(Buffer.from(t.buffer, t.byteOffset, t.length), p);
        } catch (e) {
          throw fsError(e, 'create symlink', p, entry.path);
        }
      } else {
        let fh: fs.promises.FileHandle;
        try {
          fh = await fs.promises.open(p, O_CREATE, 0o666);
        } catch (e) {
          throw fsError(e, 'create file', p, entry.path);
        }
        if (entry.depth === 0) created = true;
        try {
          for await (const chunk of entry.contents!) {
            let at = 0;
            while (at < chunk.length) {
              const { bytesWritten } = await fh.write(chunk, at, chunk.length - at);
              at += bytesWritten;
            }
          }
          if (entry.executable) {
            const st = await fh.stat();
            await fh.chmod((st.mode & 0o7777) | 0o111);
          }
        } catch (e) {
          throw e instanceof NixcacheError ? e : fsError(e, 'write', p, entry.path);
        } finally {
          await fh.close();
        }
      }
      if (entry.depth === 0) created = true;
    }
  } catch (e) {
    if (created) await fs.promises.rm(target, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}
