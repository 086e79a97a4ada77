/**
 * Store paths named on the command line: full store paths, `<hash>-<name>` basenames, or
 * symlinks into a store such as `./result`, all turned into full paths in the cache's store dir.
 */
import { realpath } from 'node:fs/promises';
import { basenameOf } from '../cache/graph.js';
import { parseStorePathBasename } from '../store-path/store-path.js';
import { UsageError } from './context.js';

function parses(base: string, storeDir: string): boolean {
  try {
    parseStorePathBasename(base, storeDir);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves command-line path arguments to full store paths under `storeDir`.
 *
 * @throws {UsageError} for an argument that is not a store path and does not resolve to one.
 */
export async function resolveStorePaths(
  args: readonly string[],
  storeDir: string,
  command: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    let base = basenameOf(arg);
    if (!parses(base, storeDir)) {
      const real = await realpath(arg).catch(() => undefined);
      const resolved = real === undefined ? undefined : basenameOf(real);
      if (resolved === undefined || !parses(resolved, storeDir)) {
        throw new UsageError(`'${arg}' is not a store path (expected ${storeDir}/<hash>-<name>)`, command);
      }
      base = resolved;
    }
    out.push(`${storeDir}/${base}`);
  }
  return out;
}
