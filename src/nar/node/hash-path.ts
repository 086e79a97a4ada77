/**
 * `hashPath`: the NAR hash of a file tree, what `nix hash path` prints (nix-formats.md §6.2,
 * §10.4), computed without keeping the NAR: framing and small files are written into reused
 * 256 KiB chunks, large files read in reused 1 MiB pieces in the thread pool while the walk
 * and the hashing (node:crypto) go on. Node only.
 */
import { createHash } from 'node:crypto';
import type { HashAlgorithm } from '../../hash/algorithm.js';
import type { NixHash } from '../../hash/hash.js';
import { NarProducer } from './walk.js';

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
  const root =
    typeof fsPath === 'string' ? fsPath : Buffer.from(fsPath.buffer, fsPath.byteOffset, fsPath.length);
  const nar = new NarProducer(root, { signal: options.signal, reuse: true, readAhead: true });
  try {
    for (;;) {
      const chunk = await nar.next();
      if (chunk === undefined) break;
      h.update(chunk);
      nar.release(chunk);
    }
  } finally {
    await nar.close();
  }
  const d = h.digest();
  return { hash: { algorithm, digest: new Uint8Array(d.buffer, d.byteOffset, d.length) }, narSize: nar.size };
}
