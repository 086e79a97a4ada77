/**
 * Directory listings for the filesystem walk (walk.ts): entry names with the types the listing
 * gives (d_type), sorted bytewise by raw name as NAR requires.
 */
import * as fs from 'node:fs';
import type { FsPath } from './fs-path.js';

/** What the listing says a child is. */
export const UNKNOWN = 0;
export const REGULAR = 1;
export const DIRECTORY = 2;
export const SYMLINK = 3;

export interface Listing {
  readonly names: FsPath[];
  readonly types: number[];
}

function typeOf(d: fs.Dirent<string | Buffer>): number {
  if (d.isFile()) return REGULAR;
  if (d.isDirectory()) return DIRECTORY;
  if (d.isSymbolicLink()) return SYMLINK;
  return UNKNOWN;
}

// Characters whose UTF-16 order differs from UTF-8 byte order (and U+FFFD, what readdir puts in
// place of bytes that are not UTF-8).
const NOT_SIMPLE = /[\ud800-\uffff]/;

/**
 * Lists a directory with entry types, sorted bytewise by raw name; names that are not valid
 * UTF-8 stay Buffers. Throws the raw fs error.
 */
export function listDirectory(p: FsPath): Listing {
  const dirents = fs.readdirSync(p, { withFileTypes: true });
  const count = dirents.length;
  const names: FsPath[] = new Array(count);
  const types: number[] = new Array(count);
  let simple = true;
  let sorted = true;
  let prev = '';
  for (let i = 0; i < count; i++) {
    const d = dirents[i]!;
    const n = d.name;
    if (NOT_SIMPLE.test(n)) {
      if (n.includes('\ufffd')) return listRaw(p);
      simple = false;
    }
    if (n <= prev) sorted = false;
    prev = n;
    names[i] = n;
    types[i] = typeOf(d);
  }
  if (simple && sorted) return { names, types };
  const order = names.map((_, i) => i);
  if (simple) order.sort((a, b) => (names[a]! < names[b]! ? -1 : 1));
  else {
    const raw = names.map((n) => Buffer.from(n as string));
    order.sort((a, b) => Buffer.compare(raw[a]!, raw[b]!));
  }
  return { names: order.map((i) => names[i]!), types: order.map((i) => types[i]!) };
}

function listRaw(p: FsPath): Listing {
  const dirents = fs.readdirSync(p, { withFileTypes: true, encoding: 'buffer' });
  dirents.sort((a, b) => Buffer.compare(a.name, b.name));
  return { names: dirents.map((d) => d.name), types: dirents.map(typeOf) };
}
