/**
 * Push metadata from the local Nix database: what `nix copy` itself would publish for each path
 * of a closure (references, deriver, CA, NarHash, NarSize and the signatures the path already
 * carries), read without the `nix` binary. `pushPaths` checks every dumped NAR against the
 * database's NarHash and NarSize, so a path changed on disk after registration is refused.
 */
import { existsSync } from 'node:fs';
import { formatHash } from '../hash/hash.js';
import { DEFAULT_NIX_DB, LocalNixDb } from '../local/nix-db.js';
import type { PathMetadata } from './push.js';

export { DEFAULT_NIX_DB } from '../local/nix-db.js';

/**
 * The metadata of `paths` and everything they reference, keyed by full store path, from the Nix
 * database at `db` (default /nix/var/nix/db/db.sqlite).
 *
 * @throws {NixcacheError} NOT_FOUND naming a path the database does not hold as valid; IO or
 *   BAD_DATABASE when the database cannot be read.
 * @example const metadata = localNixMetadata(['/nix/store/…-hello']); await pushPaths(store, paths, { metadata })
 */
export function localNixMetadata(
  paths: readonly string[],
  options: { readonly db?: string; readonly closure?: boolean } = {},
): Map<string, PathMetadata> {
  const db = LocalNixDb.open(options.db ?? DEFAULT_NIX_DB);
  try {
    const infos =
      options.closure === false ? paths.map((p) => db.pathInfo(p) ?? db.closure([p])[0]!) : db.closure(paths);
    const metadata = new Map<string, PathMetadata>();
    for (const info of infos) {
      metadata.set(info.path, {
        references: info.references,
        ...(info.deriver !== undefined && { deriver: info.deriver }),
        ...(info.ca !== undefined && { ca: info.ca }),
        narHash: formatHash(info.narHash),
        ...(info.narSize !== undefined && { narSize: info.narSize }),
        ...(info.sigs.length > 0 && { signatures: info.sigs }),
      });
    }
    return metadata;
  } finally {
    db.close();
  }
}

/** True when a Nix database exists at `db` (default /nix/var/nix/db/db.sqlite). */
export function hasLocalNixDb(db: string = DEFAULT_NIX_DB): boolean {
  return existsSync(db);
}
