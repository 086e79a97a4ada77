/**
 * The narinfo lint rules (issue 14 item 2): quirks of real narinfos that clients trip over,
 * judged on the stored text of one narinfo. Pure: no I/O. Each rule yields at most one finding per
 * narinfo. A rule is fixable when rewriting the narinfo in Nix's canonical form (or filling in
 * what the cache itself can tell) changes no fingerprint field (StorePath, NarHash, NarSize,
 * References), so every signature stays valid; a CA claim that does not compute, a store directory
 * other than the cache's, and text that does not parse are not.
 */
import { narFileExtension } from '../compression/registry.js';
import { NixcacheError } from '../errors.js';
import { storeDirOf } from '../narinfo/fingerprint.js';
import { renderNarInfo, sortSignatures } from '../narinfo/format.js';
import { parseNarInfo } from '../narinfo/parse.js';
import { NARINFO_KEYS, type NarInfo } from '../narinfo/types.js';
import { verifyNarInfo } from '../signing/verify.js';

/** The rules, by name, with whether `lint --fix` can repair what they find. */
export const LINT_RULES = {
  /** Not in Nix's canonical form: field order, hash encodings other than nix32, unknown keys. */
  'non-canonical': { fixable: true },
  /** No FileHash or no FileSize (clients cannot check the download). */
  'missing-file-hash': { fixable: true },
  /** The URL's extension names another compression than Compression. */
  'url-extension': { fixable: true },
  /** No Compression line: Nix reads it as bzip2. */
  'missing-compression': { fixable: true },
  /** `Deriver: unknown-deriver`, which Nix writes as no Deriver line. */
  'unknown-deriver': { fixable: true },
  /** Sig lines duplicated or not sorted as Nix writes them. */
  'unsorted-sigs': { fixable: true },
  /** A CA claim that does not compute to the store path (or contradicts NarHash). */
  'ca-mismatch': { fixable: false },
  /** StorePath in another store directory than nix-cache-info's StoreDir. */
  'store-dir-mismatch': { fixable: false },
  /** The cache writes `.ls` listings, and this NAR has none. */
  'missing-listing': { fixable: true },
  /** The narinfo does not parse. */
  unreadable: { fixable: false },
} as const;

export type LintRule = keyof typeof LINT_RULES;

export interface LintFinding {
  readonly rule: LintRule;
  readonly hashPart: string;
  readonly storePath?: string;
  /** What is wrong, naming the line or field. */
  readonly message: string;
  readonly fixable: boolean;
}

export interface NarInfoLint {
  /** The parsed narinfo (with its own store directory), unless it does not parse. */
  readonly info?: NarInfo;
  readonly findings: readonly LintFinding[];
}

const KNOWN_KEYS: readonly string[] = NARINFO_KEYS;
const CANONICAL_HASH = /^sha256:[0-9abcdfghijklmnpqrsvwxyz]{52}$/;

/** Compression methods by the NAR file extensions they are written with. */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  '.xz': 'xz',
  '.bz2': 'bzip2',
  '.zst': 'zstd',
  '.lzip': 'lzip',
  '.lz': 'lzip',
  '.lz4': 'lz4',
  '.br': 'br',
  '.gz': 'gzip',
};

/** The narinfo's fields without the text it was read from: what Nix would write. */
export function canonicalNarInfo(info: NarInfo): NarInfo {
  const { original: _, ...fields } = info;
  return fields;
}

function lines(text: string): { key: string; value: string }[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const colon = l.indexOf(': ');
      return colon < 0 ? { key: l, value: '' } : { key: l.slice(0, colon), value: l.slice(colon + 2) };
    });
}

/** Why the URL's extension disagrees with Compression, if it does. */
function urlExtensionProblem(info: NarInfo): string | undefined {
  const url = info.url.replace(/[?#].*$/, '');
  const at = url.lastIndexOf('.nar');
  if (at < 0) return undefined;
  const ext = url.slice(at + 4);
  let expected: string;
  try {
    expected = narFileExtension(info.compression);
  } catch {
    return undefined;
  }
  if (ext === expected) return undefined;
  const named = ext === '' ? undefined : BY_EXTENSION[ext];
  if (ext === '' ? expected === '' : named === undefined || named === info.compression) return undefined;
  return `URL ${info.url} ends in ${JSON.stringify(`.nar${ext}`)} but Compression is ${info.compression} (expected .nar${expected})`;
}

/**
 * Lints the text of one narinfo.
 *
 * @param cacheStoreDir the StoreDir of the cache's nix-cache-info (or the store URL's).
 * @example lintNarInfoText(text, 'abc…', '/nix/store').findings.map((f) => f.rule)
 */
export function lintNarInfoText(text: string, hashPart: string, cacheStoreDir: string): NarInfoLint {
  const findings: LintFinding[] = [];
  const parsedLines = lines(text);
  const storePathLine = parsedLines.find((l) => l.key === 'StorePath')?.value;
  const add = (rule: LintRule, message: string, storePath?: string) =>
    findings.push({
      rule,
      hashPart,
      ...(storePath !== undefined && { storePath }),
      message,
      fixable: LINT_RULES[rule].fixable,
    });
  let info: NarInfo;
  try {
    const dir = storePathLine?.startsWith('/') ? storeDirOf(storePathLine) : cacheStoreDir;
    info = parseNarInfo(text, { source: `${hashPart}.narinfo`, storeDir: dir || cacheStoreDir });
  } catch (e) {
    if (!(e instanceof NixcacheError)) throw e;
    add('unreadable', e.message, storePathLine);
    return { findings };
  }
  const sp = info.storePath;
  if (storeDirOf(sp) !== cacheStoreDir) {
    add('store-dir-mismatch', `StorePath ${sp} is not in the cache's StoreDir ${cacheStoreDir}`, sp);
  }

  // The text-level rules, each about one kind of line.
  const compressionLine = parsedLines.find((l) => l.key === 'Compression');
  const textRules: LintRule[] = [];
  if (compressionLine === undefined || compressionLine.value === '') {
    add('missing-compression', 'no Compression line: Nix reads the NAR as bzip2', sp);
    textRules.push('missing-compression');
  }
  if (parsedLines.some((l) => l.key === 'Deriver' && l.value === 'unknown-deriver')) {
    add('unknown-deriver', "'Deriver: unknown-deriver' (Nix writes no Deriver line)", sp);
    textRules.push('unknown-deriver');
  }
  const sigs = parsedLines.filter((l) => l.key === 'Sig').map((l) => l.value);
  const sorted = sortSignatures(sigs);
  if (sorted.length !== sigs.length || sorted.some((s, i) => s !== sigs[i])) {
    const what = sorted.length !== sigs.length ? 'duplicate Sig lines' : 'Sig lines not sorted';
    add('unsorted-sigs', `${what} (${sigs.length} lines, ${sorted.length} distinct)`, sp);
    textRules.push('unsorted-sigs');
  }

  // Canonical form: what is left once those are accounted for.
  const reasons: string[] = [];
  const unknown = [...new Set(parsedLines.filter((l) => !KNOWN_KEYS.includes(l.key)).map((l) => l.key))];
  if (unknown.length) {
    // Key names come from the file: shown short (the CLI escapes control characters).
    const shown = unknown.slice(0, 5).map((k) => (k.length > 40 ? `${k.slice(0, 40)}…` : k));
    reasons.push(`unknown keys ${shown.join(', ')}${unknown.length > 5 ? ', …' : ''}`);
  }
  for (const key of ['NarHash', 'FileHash']) {
    const v = parsedLines.find((l) => l.key === key)?.value;
    if (v !== undefined && !CANONICAL_HASH.test(v))
      reasons.push(`${key} not in sha256 nix32 (${v.slice(0, 12)}…)`);
  }
  let last = -1;
  for (const l of parsedLines) {
    const k = KNOWN_KEYS.indexOf(l.key);
    if (k < 0) continue;
    if (k < last) {
      reasons.push(`${l.key} after ${KNOWN_KEYS[last]} (field order)`);
      break;
    }
    last = k;
  }
  if (!parsedLines.some((l) => l.key === 'References')) reasons.push('no References line');
  if (reasons.length === 0 && textRules.length === 0 && text !== renderNarInfo(canonicalNarInfo(info))) {
    reasons.push('spelled differently from what Nix writes');
  }
  if (reasons.length) add('non-canonical', `not in Nix's canonical form: ${reasons.join('; ')}`, sp);

  if (info.fileHash === undefined || info.fileSize === undefined) {
    const missing = [
      info.fileHash === undefined && 'FileHash',
      info.fileSize === undefined && 'FileSize',
    ].filter(Boolean);
    add('missing-file-hash', `no ${missing.join(' and no ')}: clients cannot check the download`, sp);
  }
  const ext = urlExtensionProblem(info);
  if (ext !== undefined) add('url-extension', ext, sp);
  if (info.ca !== undefined) {
    const problem = verifyNarInfo(info, []).contentAddressProblem;
    if (problem !== undefined) add('ca-mismatch', `CA ${info.ca}: ${problem}`, sp);
  }
  return { info, findings };
}
