/**
 * Shared helpers of the NAR tests: a raw token builder for hand-made (also hostile) archives,
 * chunkers, an in-memory tree model with a fast-check arbitrary, and materialising trees on disk.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { compareBytes, concatBytes, utf8 } from '../../src/internal/bytes.js';
import { type NarEntry, type NarWriteEntry, readNar } from '../../src/nar/index.js';

/** One raw token: a string (or bytes) framed as str(), or raw bytes / a raw u64 as they are. */
export type Token = string | Uint8Array | { readonly raw: Uint8Array } | { readonly u64: bigint };

function u64(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

/** str(s): length, bytes, zero padding. */
export function str(s: string | Uint8Array): Uint8Array {
  const b = typeof s === 'string' ? utf8(s) : s;
  const out = new Uint8Array(8 + b.length + ((8 - (b.length % 8)) % 8));
  out.set(u64(BigInt(b.length)), 0);
  out.set(b, 8);
  return out;
}

/** Concatenates tokens into NAR bytes without any validation. */
export function rawNar(...tokens: Token[]): Uint8Array {
  return concatBytes(
    tokens.map((t) =>
      typeof t === 'string' || t instanceof Uint8Array ? str(t) : 'raw' in t ? t.raw : u64(t.u64),
    ),
  );
}

/** Tokens of a regular file node, from its `(` to its `)`. */
export function fileTokens(contents: string, executable = false): Token[] {
  return ['(', 'type', 'regular', ...(executable ? ['executable', ''] : []), 'contents', contents, ')'];
}

/** Tokens of a directory entry wrapping `node`. */
export function entryTokens(name: Token, node: Token[]): Token[] {
  return ['entry', '(', 'name', name, 'node', ...node, ')'];
}

/** A whole archive whose root is a directory with the given entries. */
export function dirNar(...entries: Token[][]): Uint8Array {
  return rawNar('nix-archive-1', '(', 'type', 'directory', ...entries.flat(), ')');
}

/** The bytes as a source split at the given sizes (the rest as one last chunk). */
export function* chunks(bytes: Uint8Array, sizes: Iterable<number>): Generator<Uint8Array> {
  let at = 0;
  for (const s of sizes) {
    if (at >= bytes.length) return;
    yield bytes.slice(at, at + s);
    at += s;
  }
  if (at < bytes.length) yield bytes.slice(at);
}

export function* oneByteAtATime(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i++) yield bytes.slice(i, i + 1);
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** What `readNar` produced, contents collected, in a comparable form. */
export interface Summary {
  readonly path: string;
  readonly type: string;
  readonly executable?: boolean;
  readonly size?: number;
  readonly narOffset?: number;
  readonly target?: string;
  readonly contents?: string;
}

/** Reads a whole NAR into summaries; a failure is returned as `{ error }` with its message. */
export async function summarise(
  source: Parameters<typeof readNar>[0],
): Promise<{ entries: Summary[]; error?: string }> {
  const entries: Summary[] = [];
  try {
    for await (const e of readNar(source)) entries.push(await summariseEntry(e));
    return { entries };
  } catch (e) {
    return { entries, error: (e as Error).message };
  }
}

async function summariseEntry(e: NarEntry): Promise<Summary> {
  const { path, type, executable, size, narOffset, target } = e;
  if (e.contents === undefined) return { path, type, target };
  const parts: Uint8Array[] = [];
  for await (const c of e.contents) parts.push(c.slice());
  return {
    path,
    type,
    executable,
    size,
    narOffset,
    contents: Buffer.from(concatBytes(parts)).toString('hex'),
  };
}

// ---------------------------------------------------------------------------------------------
// In-memory trees

export type Tree =
  | { readonly type: 'regular'; readonly executable: boolean; readonly contents: Uint8Array }
  | { readonly type: 'symlink'; readonly target: string }
  | { readonly type: 'directory'; readonly entries: ReadonlyMap<string, Tree> };

/** The tree as writeNar input, in archive order. */
export function treeEntries(tree: Tree, path = ''): NarWriteEntry[] {
  if (tree.type === 'regular')
    return [{ path, type: 'regular', executable: tree.executable, contents: tree.contents }];
  if (tree.type === 'symlink') return [{ path, type: 'symlink', target: tree.target }];
  const out: NarWriteEntry[] = [{ path, type: 'directory' }];
  const names = [...tree.entries.keys()].sort((a, b) => compareBytes(utf8(a), utf8(b)));
  for (const name of names)
    out.push(...treeEntries(tree.entries.get(name)!, path === '' ? name : `${path}/${name}`));
  return out;
}

/** Writes the tree at `path` (which must not exist). */
export function materialise(tree: Tree, path: string): void {
  if (tree.type === 'regular') {
    fs.writeFileSync(path, tree.contents, { mode: tree.executable ? 0o755 : 0o644 });
    fs.chmodSync(path, tree.executable ? 0o755 : 0o644);
  } else if (tree.type === 'symlink') {
    fs.symlinkSync(tree.target, path);
  } else {
    fs.mkdirSync(path);
    for (const [name, child] of tree.entries) materialise(child, join(path, name));
  }
}

const nameChars = fc.constantFrom(...'aBZ_z0.-~é日 \t"\\'.split(''), 'ü', 'A', 'b', 'é');
export const arbName = fc
  .array(nameChars, { minLength: 1, maxLength: 6 })
  .map((cs) => cs.join(''))
  .filter((n) => n !== '.' && n !== '..');

const arbTarget = fc
  .array(fc.constantFrom('a', '/', '.', 'é', ' ', 'x', '..', 'nix/store'), { minLength: 1, maxLength: 8 })
  .map((cs) => cs.join(''));

const arbContents = fc.oneof(
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 100, maxLength: 3000 }) },
);

export const arbTree: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fc.constant('regular' as const), executable: fc.boolean(), contents: arbContents }),
    fc.record({ type: fc.constant('symlink' as const), target: arbTarget }),
    fc
      .uniqueArray(fc.tuple(arbName, tie('tree')), { maxLength: 5, selector: ([n]) => n })
      .map((kids) => ({ type: 'directory' as const, entries: new Map(kids) })),
  ),
})).tree;
