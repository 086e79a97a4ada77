/**
 * `hashPath`: the NAR hash of a file tree, what `nix hash path` prints (nix-formats.md §6.2,
 * §10.4), computed without building the NAR: framing and file contents are written into one
 * reused 256 KiB chunk, hashed with node:crypto each time it fills. Node only.
 */
import { createHash } from 'node:crypto';
import type { HashAlgorithm } from '../../hash/algorithm.js';
import type { NixHash } from '../../hash/hash.js';
import { ChunkWriter, REUSED_CHUNK, walkTree } from './walk.js';

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
  const out = new ChunkWriter((chunk) => h.update(chunk), REUSED_CHUNK, true);
  const root =
    typeof fsPath === 'string' ? fsPath : Buffer.from(fsPath.buffer, fsPath.byteOffset, fsPath.length);
  for await (const _ of walkTree(root, out, { signal: options.signal })) {
    // the walk feeds the hasher through the writer
  }
  out.flush();
  const d = h.digest();
  return { hash: { algorithm, digest: new Uint8Array(d.buffer, d.byteOffset, d.length) }, narSize: out.size };
}
