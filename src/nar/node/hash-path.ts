/**
 * `hashPath`: the NAR hash of a file tree, what `nix hash path` prints (nix-formats.md §6.2,
 * §10.4), computed without building the NAR: framing goes through a reused buffer and file
 * contents are read into one reused 1 MiB buffer and hashed with node:crypto. Node only.
 */
import { createHash } from 'node:crypto';
import type { HashAlgorithm } from '../../hash/algorithm.js';
import type { NixHash } from '../../hash/hash.js';
import { NarEncoder } from '../write.js';
import { walkTree } from './walk.js';

/** Options of `hashPath`. */
export interface HashPathOptions {
  /** Default sha256. */
  readonly algorithm?: HashAlgorithm;
  readonly signal?: AbortSignal;
}

/** The NAR hash and NAR size of a tree. */
export interface HashPathResult {
  readonly hash: NixHash;
  readonly narSize: number;
}

/**
 * Hashes the NAR serialisation of `fsPath` (same tree rules as `dumpPath`).
 *
 * @throws {NixcacheError} IO, UNSUPPORTED, BAD_NAR (depth 4096), ABORTED — as `dumpPath`.
 * @example
 * const { hash } = await hashPath('./result');
 * formatHash(hash, 'sri') // 'sha256-…'
 */
export async function hashPath(
  fsPath: string | Uint8Array,
  options: HashPathOptions = {},
): Promise<HashPathResult> {
  const algorithm = options.algorithm ?? 'sha256';
  const h = createHash(algorithm);
  const enc = new NarEncoder((bytes) => h.update(bytes), { reuseBuffer: true, bufferSize: 256 * 1024 });
  const root =
    typeof fsPath === 'string' ? fsPath : Buffer.from(fsPath.buffer, fsPath.byteOffset, fsPath.length);
  for await (const _ of walkTree(root, enc, { signal: options.signal, reuseBuffers: true })) {
    // the walk feeds the hasher through the encoder
  }
  enc.flush();
  const d = h.digest();
  return { hash: { algorithm, digest: new Uint8Array(d.buffer, d.byteOffset, d.length) }, narSize: enc.size };
}
