/**
 * What is at a path of the filesystem walk (walk.ts), opened for writing its NAR node: a regular
 * file (open, with its stat), a directory (listed) or a symlink (its target). The directory
 * listing's entry type is tried first, so a listed regular file costs one path lookup (open,
 * then fstat) instead of two; whenever what is found disagrees with the listing (the tree
 * changed, or the file system gave no type) the node is looked at again the plain way, lstat
 * first, which also produces the usual errors.
 */
import * as fs from 'node:fs';
import { NixcacheError } from '../../errors.js';
import { type FsPath, ioError, show } from './fs-path.js';
import { DIRECTORY, type Listing, listDirectory, REGULAR, SYMLINK } from './list-dir.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const O_READ = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0);
/** For files the listing says are regular: never block opening a fifo that replaced one. */
const O_READ_LISTED = O_READ | (fs.constants.O_NONBLOCK ?? 0);

/** A node, opened. Every field is always present (one object shape for the walk's hot path). */
export interface OpenedNode {
  /** `REGULAR`, `DIRECTORY` or `SYMLINK`. */
  readonly kind: number;
  /** The open file (the caller closes it), -1 for other kinds. */
  readonly fd: number;
  readonly stat: fs.Stats | undefined;
  readonly listing: Listing | undefined;
  readonly target: Buffer | undefined;
}

/** Tries `fn`; on an fs error (not one of ours) returns undefined. */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NixcacheError) throw e;
    return undefined;
  }
}

/** Opens `path` for reading and checks it is a regular file; undefined when it is not one. */
function openRegular(path: FsPath, listed: boolean): OpenedNode | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, listed ? O_READ_LISTED : O_READ);
  } catch (e) {
    if (listed) return undefined;
    throw ioError(e, 'open', path);
  }
  let stat: fs.Stats;
  try {
    stat = fs.fstatSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    if (listed) return undefined;
    throw ioError(e, 'fstat', path);
  }
  if ((stat.mode & S_IFMT) !== S_IFREG) {
    fs.closeSync(fd);
    if (listed) return undefined;
    throw new NixcacheError('IO', `file '${show(path)}' changed while it was being read`, {
      path: show(path),
    });
  }
  return { kind: REGULAR, fd, stat, listing: undefined, target: undefined };
}

const directory = (listing: Listing): OpenedNode => ({
  kind: DIRECTORY,
  fd: -1,
  stat: undefined,
  listing,
  target: undefined,
});

const symlink = (target: Buffer): OpenedNode => ({
  kind: SYMLINK,
  fd: -1,
  stat: undefined,
  listing: undefined,
  target,
});

/**
 * Opens the node at `path`, which the directory listing said is `listed` (`UNKNOWN` for the root).
 *
 * @throws {NixcacheError} IO when it cannot be read, UNSUPPORTED for fifos, sockets and devices.
 */
export function openNode(path: FsPath, listed: number): OpenedNode {
  if (listed === REGULAR) {
    const file = openRegular(path, true);
    if (file !== undefined) return file;
  } else if (listed === DIRECTORY) {
    const listing = attempt(() => listDirectory(path));
    if (listing !== undefined) return directory(listing);
  } else if (listed === SYMLINK) {
    const target = attempt(() => fs.readlinkSync(path, { encoding: 'buffer' }));
    if (target !== undefined) return symlink(target);
  }
  // The plain way (also after `UNKNOWN`): lstat, then act on what it says (and report errors).
  let mode: number;
  try {
    mode = fs.lstatSync(path).mode & S_IFMT;
  } catch (e) {
    throw ioError(e, 'lstat', path);
  }
  if (mode === S_IFREG) return openRegular(path, false)!;
  if (mode === S_IFDIR) {
    try {
      return directory(listDirectory(path));
    } catch (e) {
      throw ioError(e, 'read directory', path);
    }
  }
  if (mode === S_IFLNK) {
    try {
      return symlink(fs.readlinkSync(path, { encoding: 'buffer' }));
    } catch (e) {
      throw ioError(e, 'read symlink', path);
    }
  }
  throw new NixcacheError('UNSUPPORTED', `file '${show(path)}' has an unsupported type`, {
    path: show(path),
  });
}
