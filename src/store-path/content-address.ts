/**
 * Content-address strings as they appear in narinfo `CA:` lines (nix-formats.md §3):
 * `text:<algo>:<digest>` and `fixed:[r:|git:]<algo>:<digest>`.
 */
import { NixcacheError } from '../errors.js';
import { isHashAlgorithm } from '../hash/algorithm.js';
import { formatHash, type NixHash, parseHash } from '../hash/hash.js';

export type ContentAddressMethod = 'text' | 'flat' | 'nar' | 'git';

/** A parsed content address. */
export interface ContentAddress {
  readonly method: ContentAddressMethod;
  readonly hash: NixHash;
}

function badCa(text: string, reason: string): NixcacheError {
  return new NixcacheError(
    'BAD_CONTENT_ADDRESS',
    `invalid content address ${JSON.stringify(text)}: ${reason}`,
    {
      actual: text,
    },
  );
}

/**
 * Parses `text:sha256:…`, `fixed:r:sha256:…`, `fixed:sha1:…` or `fixed:git:sha1:…`. The digest
 * may be base16, nix32 or base64 (never SRI).
 *
 * @throws {NixcacheError} BAD_CONTENT_ADDRESS
 * @example parseContentAddress('fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh')
 */
export function parseContentAddress(text: string): ContentAddress {
  let method: ContentAddressMethod;
  let rest: string;
  if (text.startsWith('text:')) {
    method = 'text';
    rest = text.slice(5);
  } else if (text.startsWith('fixed:r:')) {
    method = 'nar';
    rest = text.slice(8);
  } else if (text.startsWith('fixed:git:')) {
    method = 'git';
    rest = text.slice(10);
  } else if (text.startsWith('fixed:')) {
    method = 'flat';
    rest = text.slice(6);
  } else {
    throw badCa(text, "expected a 'text:' or 'fixed:' prefix");
  }
  const colon = rest.indexOf(':');
  if (colon < 0 || !isHashAlgorithm(rest.slice(0, colon))) throw badCa(text, 'expected <algorithm>:<digest>');
  try {
    const hash = parseHash(rest);
    if (method === 'text' && hash.algorithm !== 'sha256') throw badCa(text, 'text hashing requires sha256');
    return { method, hash };
  } catch (e) {
    if (e instanceof NixcacheError && e.code === 'BAD_CONTENT_ADDRESS') throw e;
    throw badCa(text, (e as Error).message);
  }
}

const PREFIX: Record<ContentAddressMethod, string> = {
  text: 'text:',
  flat: 'fixed:',
  nar: 'fixed:r:',
  git: 'fixed:git:',
};

/**
 * Renders a content address the way Nix writes it (nix32 digest).
 *
 * @example formatContentAddress({ method: 'nar', hash }) // 'fixed:r:sha256:…'
 */
export function formatContentAddress(ca: ContentAddress): string {
  return PREFIX[ca.method] + formatHash(ca.hash, 'nix32');
}
