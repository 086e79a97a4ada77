/**
 * Computing store paths (nix-formats.md §3): the fingerprint `<type>:sha256:<hex>:<storeDir>:<name>`
 * hashed, XOR-folded to 20 bytes and nix32-encoded; text, source and fixed-output paths; and the
 * check of a narinfo's `CA:` claim.
 */
import { NixcacheError } from '../errors.js';
import { compressHash, formatHash, type NixHash } from '../hash/hash.js';
import { hashBytes } from '../hash/hasher.js';
import { compareUtf8, toHex } from '../internal/bytes.js';
import { encodeNix32 } from '../nix32.js';
import { type ContentAddress, parseContentAddress } from './content-address.js';
import {
  formatStorePath,
  parseStorePath,
  STORE_DIR,
  type StorePath,
  storePathNameProblem,
} from './store-path.js';

function checkName(name: string): void {
  const problem = storePathNameProblem(name);
  if (problem) {
    throw new NixcacheError('BAD_STORE_PATH', `invalid store path name ${JSON.stringify(name)}: ${problem}`, {
      actual: name,
    });
  }
}

/**
 * The primitive: a store path from a type string, a sha256 inner digest and a name.
 *
 * @throws {NixcacheError} BAD_STORE_PATH for an invalid name, BAD_ARGUMENT for a digest that is not 32 bytes.
 * @example makeStorePath('text', sha256OfContents, 'foo')
 */
export function makeStorePath(
  type: string,
  innerDigest: Uint8Array,
  name: string,
  storeDir: string = STORE_DIR,
): string {
  checkName(name);
  if (innerDigest.length !== 32) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `inner digest must be sha256 (32 bytes), got ${innerDigest.length}`,
    );
  }
  const fingerprint = `${type}:sha256:${toHex(innerDigest)}:${storeDir}:${name}`;
  const hash = encodeNix32(compressHash(hashBytes('sha256', fingerprint), 20));
  return formatStorePath({ storeDir, hash, name });
}

/** Sorted, de-duplicated full paths of references (full paths or StorePaths). */
function referenceList(references: Iterable<string | StorePath>, storeDir: string): string[] {
  const paths = new Set<string>();
  for (const r of references)
    paths.add(typeof r === 'string' ? formatStorePath(parseStorePath(r, storeDir)) : formatStorePath(r));
  return [...paths].sort(compareUtf8);
}

function typeWithReferences(base: string, refs: readonly string[], self: boolean): string {
  let type = base;
  for (const r of refs) type += `:${r}`;
  if (self) type += ':self';
  return type;
}

/**
 * The path of a "text" object (`builtins.toFile`, `.drv` files).
 *
 * @throws {NixcacheError} BAD_STORE_PATH
 * @example makeTextPath('foo', 'bar') // '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo'
 */
export function makeTextPath(
  name: string,
  contents: string | Uint8Array,
  references: Iterable<string | StorePath> = [],
  storeDir: string = STORE_DIR,
): string {
  const type = typeWithReferences('text', referenceList(references, storeDir), false);
  return makeStorePath(type, hashBytes('sha256', contents), name, storeDir);
}

/**
 * The path of NAR-hashed sha256 content (`nix-store --add`, recursive sha256 fixed outputs).
 *
 * @throws {NixcacheError} BAD_STORE_PATH, BAD_ARGUMENT when `narHash` is not sha256.
 * @example makeSourcePath('foo', parseHash('sha256:…'), ['/nix/store/…-bar'], { self: true })
 */
export function makeSourcePath(
  name: string,
  narHash: NixHash,
  references: Iterable<string | StorePath> = [],
  options: { self?: boolean; storeDir?: string } = {},
): string {
  const storeDir = options.storeDir ?? STORE_DIR;
  if (narHash.algorithm !== 'sha256') {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `a source path needs a sha256 NAR hash, got ${narHash.algorithm}`,
    );
  }
  const type = typeWithReferences('source', referenceList(references, storeDir), options.self ?? false);
  return makeStorePath(type, narHash.digest, name, storeDir);
}

/**
 * The path of a fixed-output object: flat file hash or NAR hash of any algorithm.
 *
 * @throws {NixcacheError} BAD_STORE_PATH
 * @example makeFixedOutputPath('bar', { method: 'nar', hash: parseHash('sha1:0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33') })
 */
export function makeFixedOutputPath(
  name: string,
  content: { method: 'flat' | 'nar' | 'git'; hash: NixHash },
  storeDir: string = STORE_DIR,
): string {
  if (content.method === 'nar' && content.hash.algorithm === 'sha256') {
    return makeSourcePath(name, content.hash, [], { storeDir });
  }
  const m = content.method === 'nar' ? 'r:' : content.method === 'git' ? 'git:' : '';
  const inner = `fixed:out:${m}${content.hash.algorithm}:${toHex(content.hash.digest)}:`;
  return makeStorePath('output:out', hashBytes('sha256', inner), name, storeDir);
}

/**
 * The store path that a content address (with these references) stands for. A narinfo's `CA:`
 * claim is valid when this equals its StorePath. `self` says whether the path refers to itself.
 *
 * @throws {NixcacheError} BAD_CONTENT_ADDRESS when the claim cannot hold (a text path with a
 *   self-reference, a fixed-output path with references), BAD_STORE_PATH.
 * @example storePathForContentAddress('texlive-hyphenex-37354', 'fixed:r:sha1:1ak1ymbmsfx7z8kh09jzkr3a4dvkrfjw')
 */
export function storePathForContentAddress(
  name: string,
  ca: string | ContentAddress,
  references: Iterable<string | StorePath> = [],
  options: { self?: boolean; storeDir?: string } = {},
): string {
  const parsed = typeof ca === 'string' ? parseContentAddress(ca) : ca;
  const storeDir = options.storeDir ?? STORE_DIR;
  const refs = referenceList(references, storeDir);
  const self = options.self ?? false;
  switch (parsed.method) {
    case 'text':
      if (self)
        throw new NixcacheError('BAD_CONTENT_ADDRESS', 'a text content address cannot refer to itself');
      return makeStorePath(typeWithReferences('text', refs, false), parsed.hash.digest, name, storeDir);
    case 'nar':
      if (parsed.hash.algorithm === 'sha256')
        return makeSourcePath(name, parsed.hash, refs, { self, storeDir });
      break;
    default:
      break;
  }
  if (refs.length > 0 || self) {
    throw new NixcacheError(
      'BAD_CONTENT_ADDRESS',
      `a fixed-output content address (${formatHash(parsed.hash)}) cannot have references`,
    );
  }
  return makeFixedOutputPath(
    name,
    { method: parsed.method as 'flat' | 'nar' | 'git', hash: parsed.hash },
    storeDir,
  );
}
