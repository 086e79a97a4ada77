/**
 * NAR listings, the `<hashPart>.ls` files of a binary cache (nix-formats.md §7.1): computing one
 * from a NAR, formatting it byte for byte as Nix writes it with `write-nar-listing=1`, and
 * parsing one with the same name rules as NAR entries (§6.3).
 *
 * What Nix 2.8 writes (checked against `nix copy --to file://…?write-nar-listing=1`): compact
 * JSON, keys in insertion order, not sorted: `{"version":1,"root":…}`, directories
 * `{"type":"directory","entries":{…}}` with entries in bytewise name order, regular files
 * `{"type":"regular","size":N,"executable":true,"narOffset":O}` with `executable` only when true,
 * symlinks `{"type":"symlink","target":"…"}`. Strings escape `"` `\` `\n` `\r` `\t` and other
 * control characters as `\u00xx`; everything else, including non-ASCII, is written raw.
 * Later versions serialise with nlohmann::json, which sorts keys (`style: 'sorted'`, the form
 * of Hydra's `.ls` files in the corpus); Nix ≥ 2.35 also always writes `executable`
 * (`style: 'nix-2.35'`). Names that are not UTF-8 cannot be reproduced exactly: listings hold
 * names as JS strings (decoded with U+FFFD replacement), where Nix writes the raw bytes.
 */
import { NixcacheError } from '../errors.js';
import { compareUtf8, utf8 } from '../internal/bytes.js';
import type { ByteSource } from '../internal/iter.js';
import { decodeNar, type NarNode, type NarVisitor, type ReadNarOptions } from './read.js';
import { NAR_MAX_DEPTH, nameProblem, targetProblem } from './wire.js';

/** A regular file in a listing. */
export interface NarListingRegular {
  readonly type: 'regular';
  readonly size: number;
  /** Absent in Nix ≤ 2.34 listings when false. */
  readonly executable?: boolean;
  /** Offset of the first content byte in the uncompressed NAR; absent when unknown. */
  readonly narOffset?: number;
}

/** A symlink in a listing. */
export interface NarListingSymlink {
  readonly type: 'symlink';
  readonly target: string;
}

/** A directory in a listing; `entries` is absent only in non-recursive listings. */
export interface NarListingDirectory {
  readonly type: 'directory';
  /** Entries by name (a null-prototype object: any name, even `__proto__`, is an own key). */
  readonly entries?: Readonly<Record<string, NarListingNode>>;
}

/** An entry of a shallow listing whose details were not listed: `{}`. */
export type NarListingStub = { readonly type?: undefined };

export type NarListingNode = NarListingRegular | NarListingSymlink | NarListingDirectory | NarListingStub;

/** A whole `.ls` document. */
export interface NarListing {
  readonly version: 1;
  readonly root: NarListingNode;
}

/**
 * A `NarVisitor` that builds the listing of the archive it sees; pass it to `hashNar` (option
 * `visitor`) to hash and list in one pass.
 *
 * @example
 * const builder = new NarListingBuilder();
 * const { narHash } = await hashNar(nar, { visitor: builder });
 * const ls = formatNarListing(builder.listing);
 */
export class NarListingBuilder implements NarVisitor {
  private root: NarListingNode | undefined;
  private readonly dirs: Record<string, NarListingNode>[] = [];

  node(node: NarNode): void {
    let value: NarListingNode;
    let entries: Record<string, NarListingNode> | undefined;
    if (node.type === 'regular') {
      value = { type: 'regular', size: node.size!, executable: node.executable!, narOffset: node.narOffset! };
    } else if (node.type === 'symlink') {
      value = { type: 'symlink', target: node.target! };
    } else {
      entries = Object.create(null) as Record<string, NarListingNode>;
      value = { type: 'directory', entries };
    }
    if (node.depth === 0) {
      this.root = value;
    } else {
      const parent = this.dirs[node.depth - 1]!;
      const slash = node.path.lastIndexOf('/');
      parent[slash < 0 ? node.path : node.path.slice(slash + 1)] = value;
    }
    if (entries) this.dirs[node.depth] = entries;
  }

  /**
   * The listing built so far.
   *
   * @throws {NixcacheError} BAD_NAR when no root node was seen.
   */
  get listing(): NarListing {
    if (this.root === undefined)
      throw new NixcacheError('BAD_NAR', 'no NAR was decoded, so there is no listing');
    return { version: 1, root: this.root };
  }
}

/**
 * Reads a NAR and returns its listing (the `.ls` document), validating the archive.
 *
 * @throws {NixcacheError} BAD_NAR when the stream is not a valid NAR.
 * @example const ls = formatNarListing(await narListing(narBytes));
 */
export async function narListing(source: ByteSource, options: ReadNarOptions = {}): Promise<NarListing> {
  const builder = new NarListingBuilder();
  await decodeNar(source, builder, options);
  return builder.listing;
}

/** Options of `formatNarListing`. */
export interface FormatNarListingOptions {
  /**
   * - `'nix-2.8'` (default): keys in Nix's insertion order, `executable` only when true — what
   *   the Nix 2.8 installed here writes.
   * - `'sorted'`: keys sorted (nlohmann::json), `executable` only when true.
   * - `'nix-2.35'`: keys sorted, `executable` always written.
   */
  readonly style?: 'nix-2.8' | 'sorted' | 'nix-2.35';
}

function quote28(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    start = i + 1;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else out += `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `${out + s.slice(start)}"`;
}

function quoteSorted(s: string): string {
  return quote28(s).replace(/\\u000([89c])/g, (_, d: string) =>
    d === '8' ? '\\b' : d === 'c' ? '\\f' : '\\t',
  );
}

function sortedNames(entries: Readonly<Record<string, NarListingNode>>): string[] {
  return Object.keys(entries).sort(compareUtf8);
}

/** Formats a node and everything under it; iterative, so the depth is not bounded by the stack. */
function formatNode(root: NarListingNode, sorted: boolean, alwaysExec: boolean, out: string[]): void {
  const q = sorted ? quoteSorted : quote28;
  // Pending work, last first: nodes to format and literal text between them.
  const work: (NarListingNode | string)[] = [root];
  while (work.length > 0) {
    const node = work.pop()!;
    if (typeof node === 'string') {
      out.push(node);
      continue;
    }
    switch (node.type) {
      case 'regular': {
        const exec = node.executable === true;
        if (sorted) {
          if (exec || alwaysExec) out.push(`{"executable":${exec},`);
          else out.push('{');
          if (node.narOffset !== undefined && node.narOffset !== 0)
            out.push(`"narOffset":${node.narOffset},`);
          out.push(`"size":${node.size},"type":"regular"}`);
        } else {
          out.push(`{"type":"regular","size":${node.size}`);
          if (exec) out.push(',"executable":true');
          if (node.narOffset !== undefined && node.narOffset !== 0)
            out.push(`,"narOffset":${node.narOffset}`);
          out.push('}');
        }
        break;
      }
      case 'symlink':
        out.push(
          sorted
            ? `{"target":${q(node.target)},"type":"symlink"}`
            : `{"type":"symlink","target":${q(node.target)}}`,
        );
        break;
      case 'directory': {
        out.push(sorted ? '{' : '{"type":"directory"');
        const rest: (NarListingNode | string)[] = [];
        if (node.entries !== undefined) {
          out.push(sorted ? '"entries":{' : ',"entries":{');
          let first = true;
          for (const name of sortedNames(node.entries)) {
            rest.push(first ? `${q(name)}:` : `,${q(name)}:`, node.entries[name]!);
            first = false;
          }
          rest.push(sorted ? '},' : '}');
        }
        rest.push(sorted ? '"type":"directory"}' : '}');
        for (let i = rest.length - 1; i >= 0; i--) work.push(rest[i]!);
        break;
      }
      default:
        out.push('{}');
    }
  }
}

/**
 * Serialises a listing exactly as Nix writes `.ls` files (see the module header for the two
 * styles). Directory entries are always written in bytewise name order.
 *
 * @example formatNarListing(await narListing(nar)) // '{"version":1,"root":{"type":"regular",...}}'
 */
export function formatNarListing(listing: NarListing, options: FormatNarListingOptions = {}): string {
  const style = options.style ?? 'nix-2.8';
  const sorted = style !== 'nix-2.8';
  const out: string[] = [sorted ? '{"root":' : '{"version":1,"root":'];
  formatNode(listing.root, sorted, style === 'nix-2.35', out);
  out.push(sorted ? ',"version":1}' : '}');
  return out.join('');
}

function bad(what: string, path: string, extra: Record<string, unknown> = {}): NixcacheError {
  const where = path === '' ? 'the root' : `entry '${path}'`;
  return new NixcacheError('BAD_LISTING', `invalid NAR listing: ${what} in ${where}`, { path, ...extra });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(v: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(v))
    if (!allowed.includes(k)) throw bad(`unknown field ${JSON.stringify(k)}`, path);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A child node still to parse, and where its result goes. */
interface PendingNode {
  readonly v: unknown;
  readonly path: string;
  readonly depth: number;
  readonly set: (node: NarListingNode) => void;
}

/** Parses a node and everything under it; iterative, so the depth is not bounded by the stack. */
function parseNode(v: unknown, path: string, depth: number): NarListingNode {
  let result: NarListingNode = {};
  const work: PendingNode[] = [{ v, path, depth, set: (node) => (result = node) }];
  while (work.length > 0) {
    const item = work.pop()!;
    const children: PendingNode[] = [];
    item.set(parseOne(item.v, item.path, item.depth, children));
    // Depth first, in document order, as the recursive version reported errors.
    for (let i = children.length - 1; i >= 0; i--) work.push(children[i]!);
  }
  return result;
}

function parseOne(v: unknown, path: string, depth: number, children: PendingNode[]): NarListingNode {
  if (!isObject(v)) throw bad('a node must be a JSON object', path);
  switch (v.type) {
    case undefined:
      checkKeys(v, [], path);
      return {};
    case 'regular': {
      checkKeys(v, ['type', 'size', 'executable', 'narOffset'], path);
      if (!isCount(v.size)) throw bad('"size" must be a non-negative integer', path, { field: 'size' });
      if (v.executable !== undefined && typeof v.executable !== 'boolean') {
        throw bad('"executable" must be a boolean', path, { field: 'executable' });
      }
      if (v.narOffset !== undefined && !isCount(v.narOffset)) {
        throw bad('"narOffset" must be a non-negative integer', path, { field: 'narOffset' });
      }
      const node: { type: 'regular'; size: number; executable?: boolean; narOffset?: number } = {
        type: 'regular',
        size: v.size,
      };
      if (v.executable !== undefined) node.executable = v.executable;
      if (v.narOffset !== undefined) node.narOffset = v.narOffset;
      return node;
    }
    case 'symlink': {
      checkKeys(v, ['type', 'target'], path);
      if (typeof v.target !== 'string') throw bad('"target" must be a string', path, { field: 'target' });
      const problem = targetProblem(utf8(v.target));
      if (problem) throw bad(problem, path, { field: 'target' });
      return { type: 'symlink', target: v.target };
    }
    case 'directory': {
      checkKeys(v, ['type', 'entries'], path);
      if (v.entries === undefined) return { type: 'directory' };
      if (!isObject(v.entries)) throw bad('"entries" must be a JSON object', path, { field: 'entries' });
      if (depth + 1 >= NAR_MAX_DEPTH) throw bad(`nesting exceeds maximum depth of ${NAR_MAX_DEPTH}`, path);
      const entries = Object.create(null) as Record<string, NarListingNode>;
      for (const [name, child] of Object.entries(v.entries)) {
        const childPath = path === '' ? name : `${path}/${name}`;
        const problem = nameProblem(utf8(name));
        if (problem)
          throw bad(`invalid file name ${JSON.stringify(name)} (${problem})`, path, { actual: name });
        // Claim the key now, so that entries keep the document's order.
        entries[name] = {};
        children.push({ v: child, path: childPath, depth: depth + 1, set: (node) => (entries[name] = node) });
      }
      return { type: 'directory', entries };
    }
    default:
      throw bad(`unknown node type ${JSON.stringify(v.type)}`, path, { field: 'type' });
  }
}

/**
 * Parses and validates a `.ls` document (either style, and shallow `{}` entries). A bare node
 * (the `{"type":…}` object without the `version`/`root` wrapper) is accepted as the root.
 *
 * @throws {NixcacheError} BAD_LISTING on invalid JSON, an unknown version, type or field, a
 *   bad size or offset, or an entry name or symlink target a NAR could not contain.
 * @example parseNarListing('{"version":1,"root":{"type":"symlink","target":"/x"}}').root
 */
export function parseNarListing(text: string): NarListing {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new NixcacheError(
      'BAD_LISTING',
      `invalid NAR listing: not JSON (${(e as Error).message})`,
      {},
      { cause: e },
    );
  }
  if (!isObject(doc)) throw bad('the document must be a JSON object', '');
  if (!('version' in doc) && 'type' in doc) return { version: 1, root: parseNode(doc, '', 0) };
  checkKeys(doc, ['version', 'root'], '');
  if (doc.version !== 1)
    throw bad(`unsupported version ${JSON.stringify(doc.version)}`, '', { field: 'version' });
  return { version: 1, root: parseNode(doc.root, '', 0) };
}
