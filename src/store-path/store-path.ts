/**
 * Store path syntax (nix-formats.md §3): `<storeDir>/<32 nix32 chars>-<name>`, with Nix's name
 * rules (allowed characters, at most 211 characters, no `.`/`..` and no `.-`/`..-` prefix).
 */
import { NixcacheError } from '../errors.js';
import { isNix32Char } from '../nix32.js';

/** The default store directory. */
export const STORE_DIR = '/nix/store';
/** Length of the hash part of a store path basename. */
export const HASH_PART_LENGTH = 32;
/** Longest name Nix accepts. */
export const MAX_NAME_LENGTH = 211;

/** A parsed store path. */
export interface StorePath {
  readonly storeDir: string;
  /** The 32-character nix32 hash part. */
  readonly hash: string;
  readonly name: string;
}

const NAME_CHARS = /^[0-9a-zA-Z+\-._?=]+$/;

function badPath(path: string, reason: string): NixcacheError {
  return new NixcacheError('BAD_STORE_PATH', `invalid store path ${JSON.stringify(path)}: ${reason}`, {
    actual: path,
  });
}

/** Why `name` is not a valid store path name, or undefined when it is. */
export function storePathNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length > MAX_NAME_LENGTH) return `name is longer than ${MAX_NAME_LENGTH} characters`;
  if (!NAME_CHARS.test(name)) return 'name contains a character outside [A-Za-z0-9+-._?=]';
  if (name === '.' || name === '..' || name.startsWith('.-') || name.startsWith('..-')) {
    return "name is '.' or '..' or starts with '.-' or '..-'";
  }
  return undefined;
}

/** True when `text` is a 32-character nix32 hash part. */
export function isHashPart(text: string): boolean {
  if (text.length !== HASH_PART_LENGTH) return false;
  for (let i = 0; i < text.length; i++) if (!isNix32Char(text[i]!)) return false;
  return true;
}

/**
 * Parses a store path basename `<hash>-<name>` (as References and Deriver hold them).
 *
 * @throws {NixcacheError} BAD_STORE_PATH
 * @example parseStorePathBasename('vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo')
 */
export function parseStorePathBasename(basename: string, storeDir: string = STORE_DIR): StorePath {
  if (basename.length < HASH_PART_LENGTH + 2 || basename[HASH_PART_LENGTH] !== '-') {
    throw badPath(basename, `expected <${HASH_PART_LENGTH}-char hash>-<name>`);
  }
  const hash = basename.slice(0, HASH_PART_LENGTH);
  if (!isHashPart(hash)) throw badPath(basename, 'hash part is not 32 nix32 characters');
  const name = basename.slice(HASH_PART_LENGTH + 1);
  const problem = storePathNameProblem(name);
  if (problem) throw badPath(basename, problem);
  return { storeDir, hash, name };
}

/** Canonicalises an absolute path: collapses `//`, `.` and `..`, drops a trailing `/`. */
function canonicalise(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/**
 * Parses a full store path. Like Nix, the path is canonicalised first (trailing `/`, `//`,
 * `./` are tolerated) and must then sit directly in `storeDir`.
 *
 * @throws {NixcacheError} BAD_STORE_PATH naming the path and the reason.
 * @example parseStorePath('/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo')
 */
export function parseStorePath(path: string, storeDir: string = STORE_DIR): StorePath {
  if (!path.startsWith('/')) throw badPath(path, 'not an absolute path');
  const canonical = canonicalise(path);
  const slash = canonical.lastIndexOf('/');
  const dir = slash === 0 ? '/' : canonical.slice(0, slash);
  if (dir !== canonicalise(storeDir)) throw badPath(path, `not directly inside the store ${storeDir}`);
  return parseStorePathBasename(canonical.slice(slash + 1), storeDir);
}

/** `<hash>-<name>` of a store path. */
export function storePathBasename(sp: StorePath): string {
  return `${sp.hash}-${sp.name}`;
}

/**
 * Renders a store path in full.
 *
 * @example formatStorePath({ storeDir: '/nix/store', hash, name }) // '/nix/store/<hash>-<name>'
 */
export function formatStorePath(sp: StorePath): string {
  return `${sp.storeDir}/${sp.hash}-${sp.name}`;
}
