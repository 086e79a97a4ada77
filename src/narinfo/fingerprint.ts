/**
 * The text that narinfo signatures cover (nix-formats.md §5.1):
 * `1;<store path>;sha256:<nix32 NarHash>;<NarSize>;<sorted full reference paths, comma-joined>`.
 */
import { NixcacheError } from '../errors.js';
import { formatHash } from '../hash/hash.js';
import { compareUtf8 } from '../internal/bytes.js';
import type { NarInfo } from './types.js';

/** The store directory of a full store path (everything before the last `/`). */
export function storeDirOf(storePath: string): string {
  return storePath.slice(0, storePath.lastIndexOf('/'));
}

/**
 * Computes the signature fingerprint. NarHash is re-rendered as nix32 whatever its spelling in
 * the file; references are sorted and de-duplicated as Nix does.
 *
 * @throws {NixcacheError} BAD_NARINFO when NarSize is 0 (Nix refuses to fingerprint it).
 * @example narInfoFingerprint(info) // '1;/nix/store/…;sha256:…;196040;/nix/store/…'
 */
export function narInfoFingerprint(
  info: Pick<NarInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>,
): string {
  if (!(info.narSize > 0)) {
    throw new NixcacheError('BAD_NARINFO', `cannot fingerprint ${info.storePath}: its NarSize is not known`, {
      field: 'NarSize',
    });
  }
  const prefix = `${storeDirOf(info.storePath)}/`;
  let refs = info.references;
  // Parsed infos hold them sorted and unique already; sort only when they are not.
  for (let i = 1; i < refs.length; i++) {
    if (compareUtf8(refs[i - 1]!, refs[i]!) >= 0) {
      refs = [...new Set(refs)].sort(compareUtf8);
      break;
    }
  }
  let list = '';
  for (let i = 0; i < refs.length; i++) list += i === 0 ? prefix + refs[i] : `,${prefix}${refs[i]}`;
  return `1;${info.storePath};${formatHash(info.narHash, 'nix32')};${info.narSize};${list}`;
}
