/**
 * Hashing the bytes of a NAR's root when it is a single regular file: what flat and text content
 * addresses cover (nix-formats.md §3, §5.4). A NAR visitor, so it runs in the same pass that
 * hashes, lists or validates the archive.
 */
import type { HashAlgorithm } from '../hash/algorithm.js';
import type { NixHash } from '../hash/hash.js';
import { createHasher, type Hasher } from '../hash/hasher.js';
import type { NarNode, NarVisitor } from '../nar/read.js';

export class RootFileHasher implements NarVisitor {
  readonly #algorithm: HashAlgorithm;
  readonly #next: NarVisitor;
  #hasher: Hasher | undefined;

  /** `next` receives every callback too (e.g. a listing builder). */
  constructor(algorithm: HashAlgorithm, next: NarVisitor = {}) {
    this.#algorithm = algorithm;
    this.#next = next;
  }

  node(node: NarNode): void {
    if (node.depth === 0 && node.type === 'regular') this.#hasher = createHasher(this.#algorithm);
    this.#next.node?.(node);
  }

  contents(bytes: Uint8Array): void {
    this.#hasher?.update(bytes);
    this.#next.contents?.(bytes);
  }

  end(node: NarNode): void {
    this.#next.end?.(node);
  }

  /** The hash of the root file's bytes once the NAR is decoded; undefined when the root is not a file. */
  hash(): NixHash | undefined {
    return this.#hasher && { algorithm: this.#algorithm, digest: this.#hasher.digest() };
  }
}
