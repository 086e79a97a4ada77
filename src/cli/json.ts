/**
 * The JSON shapes of the CLI that describe store paths, named as `nix path-info --json` names
 * them (Nix 2.8's array element form), so scripts written for Nix read them unchanged.
 */
import { formatHash } from '../hash/hash.js';
import { storeDirOf } from '../narinfo/fingerprint.js';
import type { NarInfo } from '../narinfo/types.js';

/** One path as `path-info --json` and `narinfo show --json` print it. */
export interface PathInfoJson {
  readonly path: string;
  readonly valid: true;
  /** `sha256-…` (SRI), as `nix path-info --json` prints it. */
  readonly narHash: string;
  readonly narSize: number;
  /** Full store paths. */
  readonly references: readonly string[];
  readonly deriver?: string;
  readonly signatures: readonly string[];
  readonly ca?: string;
  /** NAR location relative to the cache root. */
  readonly url: string;
  readonly compression: string;
  readonly downloadHash?: string;
  readonly downloadSize?: number;
}

/** The JSON form of a narinfo. */
export function narInfoJson(info: NarInfo): PathInfoJson {
  const dir = storeDirOf(info.storePath);
  return {
    path: info.storePath,
    valid: true,
    narHash: formatHash(info.narHash, 'sri'),
    narSize: info.narSize,
    references: info.references.map((r) => `${dir}/${r}`),
    ...(info.deriver !== undefined && { deriver: `${dir}/${info.deriver}` }),
    signatures: [...info.sigs],
    ...(info.ca !== undefined && { ca: info.ca }),
    url: info.url,
    compression: info.compression,
    ...(info.fileHash !== undefined && { downloadHash: formatHash(info.fileHash, 'sri') }),
    ...(info.fileSize !== undefined && { downloadSize: info.fileSize }),
  };
}
