/**
 * `dumpPath`: the NAR serialisation of a file tree, byte for byte what `nix-store --dump`
 * writes (nix-formats.md §6.1, §6.2). Node only.
 */
import { NarProducer } from './walk.js';

/** Options of `dumpPath`. */
export interface DumpPathOptions {
  /** Aborts the walk with an ABORTED error. */
  readonly signal?: AbortSignal;
  /**
   * Each chunk is valid only until the next one is asked for: its memory is then reused. For
   * consumers that are done with a chunk when they ask for the next (a synchronous write, a
   * hash). Avoids allocating the whole NAR in fresh buffers: the same few chunks are written
   * again and again while they are still in the CPU cache.
   * Default false: every chunk is the caller's to keep.
   */
  readonly reuseChunks?: boolean;
}

/**
 * Streams the NAR of the file, symlink or directory at `fsPath`. Directory entries are written
 * in bytewise order of their raw names (non-UTF-8 names work), symlinks are not followed,
 * a file is executable when its owner-execute bit is set. Every chunk is a fresh buffer the
 * caller may keep, of at most 1 MiB: file contents are read straight into chunks that also
 * carry the framing, and each chunk is handed out as soon as it is full. Filesystem calls are
 * synchronous (see the performance notes in walk.ts).
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
  const root =
    typeof fsPath === 'string' ? fsPath : Buffer.from(fsPath.buffer, fsPath.byteOffset, fsPath.length);
  const reuse = options.reuseChunks ?? false;
  const nar = new NarProducer(root, { signal: options.signal, reuse });
  try {
    for (;;) {
      const chunk = await nar.next();
      if (chunk === undefined) return;
      yield chunk;
      if (reuse) nar.release(chunk);
    }
  } finally {
    await nar.close();
  }
}
