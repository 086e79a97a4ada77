/**
 * Checking a narinfo's `CA:` hash against the data it covers (nix-formats.md §5.4), in the same
 * pass that streams the NAR: the NAR bytes for `fixed:r:`, the single file's bytes for `fixed:`
 * (flat) and `text:`. Nix does this on every import ("ca hash mismatch importing path"), signed or
 * not; copy, push and verify do it before they publish, sign or call a path ok.
 */
import { NixcacheError } from '../errors.js';
import type { HashAlgorithm } from '../hash/algorithm.js';
import { formatHash, hashEquals, type NixHash } from '../hash/hash.js';
import { createHasher, type Hasher } from '../hash/hasher.js';
import type { NarNode, NarVisitor } from '../nar/read.js';
import { type ContentAddress, parseContentAddress } from '../store-path/content-address.js';
import { RootFileHasher } from './root-file-hash.js';

/**
 * Parses a narinfo's CA text for checking; a malformed claim is an INTEGRITY problem of the path.
 *
 * @throws {NixcacheError} INTEGRITY naming the path and the field CA.
 */
export function parseClaimedContentAddress(storePath: string, ca: string): ContentAddress {
  try {
    return parseContentAddress(ca);
  } catch (e) {
    throw new NixcacheError(
      'INTEGRITY',
      `${storePath}: CA ${JSON.stringify(ca)} is not a content address (${(e as Error).message})`,
      { path: storePath, field: 'CA', actual: ca },
      { cause: e },
    );
  }
}

/**
 * Hashes what a content address covers while a NAR streams through: give it every NAR chunk
 * (`update`) and use it as (or in front of) the NAR decoder's visitor.
 */
export class ContentAddressHasher implements NarVisitor {
  readonly ca: ContentAddress;
  readonly #narHasher: Hasher | undefined;
  readonly #root: RootFileHasher | undefined;
  readonly #next: NarVisitor;

  /**
   * `narAlgorithm` is the algorithm of the NAR hash the caller computes anyway (its result is
   * passed to `result`); a `fixed:r:` claim in another algorithm hashes the NAR itself.
   */
  constructor(ca: ContentAddress, narAlgorithm: HashAlgorithm, next: NarVisitor = {}) {
    this.ca = ca;
    this.#next = next;
    this.#narHasher =
      ca.method === 'nar' && ca.hash.algorithm !== narAlgorithm ? createHasher(ca.hash.algorithm) : undefined;
    this.#root =
      ca.method === 'flat' || ca.method === 'text' ? new RootFileHasher(ca.hash.algorithm) : undefined;
  }

  /** One chunk of the NAR bytes. */
  update(chunk: Uint8Array): void {
    this.#narHasher?.update(chunk);
  }

  node(node: NarNode): void {
    this.#root?.node(node);
    this.#next.node?.(node);
  }

  contents(bytes: Uint8Array): void {
    this.#root?.contents(bytes);
    this.#next.contents?.(bytes);
  }

  end(node: NarNode): void {
    this.#root?.end(node);
    this.#next.end?.(node);
  }

  /**
   * The hash of what the claim covers, once the NAR ended; `narHash` is the NAR's hash in the
   * constructor's `narAlgorithm`. Undefined when it cannot be computed (a flat or text claim on
   * a NAR whose root is not a file, a git claim).
   */
  result(narHash: NixHash): NixHash | undefined {
    switch (this.ca.method) {
      case 'nar':
        return this.#narHasher
          ? { algorithm: this.ca.hash.algorithm, digest: this.#narHasher.digest() }
          : narHash;
      case 'flat':
      case 'text':
        return this.#root!.hash();
      default:
        return undefined;
    }
  }
}

/**
 * Throws unless `actual` (from `ContentAddressHasher.result`) is the claimed CA hash.
 *
 * @throws {NixcacheError} INTEGRITY naming the path and the field CA; UNSUPPORTED for a git
 *   claim, which nixcache cannot hash.
 */
export function checkContentAddressHash(
  storePath: string,
  ca: ContentAddress,
  actual: NixHash | undefined,
): void {
  if (ca.method === 'git') {
    throw new NixcacheError('UNSUPPORTED', `${storePath}: CA: git content addresses cannot be checked`, {
      path: storePath,
      field: 'CA',
    });
  }
  if (actual === undefined) {
    throw new NixcacheError(
      'INTEGRITY',
      `${storePath}: CA hash mismatch: the ${ca.method} claim ${formatHash(ca.hash)} covers a single file, but the NAR's root is not a regular file`,
      { path: storePath, field: 'CA', expected: formatHash(ca.hash) },
    );
  }
  if (!hashEquals(actual, ca.hash)) {
    throw new NixcacheError(
      'INTEGRITY',
      `${storePath}: CA hash mismatch: expected ${formatHash(ca.hash)}, got ${formatHash(actual)}`,
      { path: storePath, field: 'CA', expected: formatHash(ca.hash), actual: formatHash(actual) },
    );
  }
}
