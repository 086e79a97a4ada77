/**
 * Paths of the filesystem walk (walk.ts): a name read from a directory is a string, or a Buffer
 * when it is not valid UTF-8, so that raw names round-trip; and the walk's typed errors, which
 * name the path.
 */
import { NixcacheError } from '../../errors.js';

export type FsPath = string | Buffer;

export function show(p: FsPath): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}

export function ioError(e: unknown, op: string, p: FsPath): NixcacheError {
  if (e instanceof NixcacheError) return e;
  const err = e as NodeJS.ErrnoException;
  return new NixcacheError(
    'IO',
    `cannot ${op} '${show(p)}': ${err.code ?? err.message}`,
    { path: show(p), operation: op },
    { cause: e },
  );
}

export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw new NixcacheError('ABORTED', 'filesystem walk aborted', {}, { cause: signal.reason });
}

export function changed(p: FsPath, pos: number, size: number): NixcacheError {
  return new NixcacheError(
    'IO',
    `file '${show(p)}' changed while it was being read (got ${pos} of ${size} bytes)`,
    { path: show(p) },
  );
}

const SLASH = Buffer.from('/');

export function join(dir: FsPath, name: FsPath): FsPath {
  if (typeof dir === 'string' && typeof name === 'string') return `${dir}/${name}`;
  const d = typeof dir === 'string' ? Buffer.from(dir) : dir;
  const n = typeof name === 'string' ? Buffer.from(name) : name;
  return Buffer.concat([d, SLASH, n], d.length + 1 + n.length);
}
