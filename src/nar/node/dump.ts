/**
 * `dumpPath`: the NAR serialisation of a file tree, byte for byte what `nix-store --dump`
 * writes (nix-formats.md §6.1, §6.2). Node only.
 */
import { ChunkWriter, FRESH_CHUNK, walkTree } from './walk.js';

/** Options of `dumpPath`. */
export interface DumpPathOptions {
  /** Aborts the walk with an ABORTED error. */
  readonly signal?: AbortSignal;
}

/**
 * Streams the NAR of the file, symlink or directory at `fsPath`. Directory entries are written
 * in bytewise order of their raw names (non-UTF-8 names work), symlinks are not followed,
 * a file is executable when its owner-execute bit is set. Every chunk is a fresh buffer the
 * caller may keep: file contents are read straight into chunks of up to 1 MiB that also carry
 * the framing. Filesystem calls are synchronous (see the performance notes in walk.ts); the
 * generator yields whenever a chunk is full.
 *
 * @throws {NixcacheError} IO when the tree cannot be read (or a file shrinks while read),
 *   UNSUPPORTED for fifos, sockets and devices, BAD_NAR when the tree reaches depth `NAR_MAX_DEPTH` (4096),
 *   ABORTED when `signal` fires.
 * @example
 * for await (const chunk of dumpPath('/nix/store/…-hello')) out.write(chunk);
 */
export async function* dumpPath(
  fsPath: string | Uint8Array,
  options: DumpPathOptions = {},
): AsyncGenerator<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const out = new ChunkWriter((chunk) => chunks.push(chunk), FRESH_CHUNK, false);
  const root =
    typeof fsPath === 'string' ? fsPath : Buffer.from(fsPath.buffer, fsPath.byteOffset, fsPath.length);
  for await (const _ of walkTree(root, out, {
    signal: options.signal,
    hasOutput: () => chunks.length > 0,
  })) {
    if (chunks.length > 0) {
      yield* chunks;
      chunks.length = 0;
    }
  }
  out.flush();
  yield* chunks;
}
