/**
 * Reading narinfo text (nix-formats.md §4.1-4.2, §4.4). Accepts everything real Nix and real caches
 * write (any hash encoding, missing Compression, `unknown-deriver`, missing References, legacy
 * `System:` and other unknown keys) and rejects what Nix would misread (CRLF, a missing `": "`,
 * blank lines) with an error naming the source, line and field.
 */
import { NixcacheError } from '../errors.js';
import type { NixHash } from '../hash/hash.js';
import { parseHash } from '../hash/hash.js';
import { compareUtf8 } from '../internal/bytes.js';
import { parseContentAddress } from '../store-path/content-address.js';
import {
  formatStorePath,
  parseStorePath,
  parseStorePathBasename,
  STORE_DIR,
} from '../store-path/store-path.js';
import { renderNarInfo } from './format.js';
import { COMPRESSION_METHODS, type CompressionMethod, type NarInfo } from './types.js';

export interface ParseNarInfoOptions {
  /** Name used in error messages, e.g. the file name `<hash>.narinfo`. */
  readonly source?: string;
  /** Store directory the StorePath must be in (default `/nix/store`). */
  readonly storeDir?: string;
}

const SIZE = /^[0-9]+$/;
const SINGLE_KEYS = new Set([
  'StorePath',
  'URL',
  'Compression',
  'FileHash',
  'FileSize',
  'NarHash',
  'NarSize',
  'References',
  'Deriver',
  'CA',
]);

class LineError extends Error {}

/** Parses a decimal size as Nix does (digits only), bounded to what a JS number holds exactly. */
function parseSize(value: string): number {
  if (!SIZE.test(value)) throw new LineError(`expected a decimal number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new LineError(`number ${value} is too large`);
  return n;
}

function parseAnyHash(value: string): NixHash {
  if (!value.includes(':') && !value.includes('-')) {
    throw new LineError(`expected <algorithm>:<digest> or an SRI hash, got ${JSON.stringify(value)}`);
  }
  try {
    return parseHash(value);
  } catch (e) {
    throw new LineError((e as Error).message);
  }
}

function checkSignature(value: string): string {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) {
    throw new LineError(`signature ${JSON.stringify(value)} is not <key name>:<base64>`);
  }
  return value;
}

/**
 * Parses narinfo text.
 *
 * @throws {NixcacheError} BAD_NARINFO, e.g. `abc.narinfo line 5 (NarHash): expected a sha256 hash…`;
 *   `data` holds source, line and field.
 * @example parseNarInfo(await (await fetch(url)).text(), { source: 'abc.narinfo' })
 */
export function parseNarInfo(text: string, options: ParseNarInfoOptions = {}): NarInfo {
  const source = options.source ?? 'narinfo';
  const storeDir = options.storeDir ?? STORE_DIR;
  const fail = (reason: string, line?: number, field?: string): NixcacheError =>
    new NixcacheError(
      'BAD_NARINFO',
      `${source}${line === undefined ? '' : ` line ${line}`}${field === undefined ? '' : ` (${field})`}: ${reason}`,
      { source, ...(line === undefined ? {} : { line }), ...(field === undefined ? {} : { field }) },
    );
  if (text.length === 0) throw fail('empty file');
  if (!text.endsWith('\n')) throw fail('the last line does not end with a newline', text.split('\n').length);

  let storePath: string | undefined;
  let url: string | undefined;
  let compression: CompressionMethod | undefined;
  let fileHash: NixHash | undefined;
  let fileSize: number | undefined;
  let narHash: NixHash | undefined;
  let narSize: number | undefined;
  let references: string[] = [];
  let deriver: string | undefined;
  let ca: string | undefined;
  const sigs: string[] = [];
  const seen = new Set<string>();

  const lines = text.split('\n');
  lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!;
    if (line.includes('\r'))
      throw fail('carriage return in line (CRLF line endings are not supported)', lineNo);
    if (line.length === 0) throw fail('empty line', lineNo);
    const colon = line.indexOf(':');
    if (colon < 0) throw fail("expected 'Key: value'", lineNo);
    const key = line.slice(0, colon);
    if (line[colon + 1] !== ' ') throw fail("expected ': ' after the key", lineNo, key);
    const value = line.slice(colon + 2);
    if (SINGLE_KEYS.has(key)) {
      if (seen.has(key)) throw fail(`duplicate ${key} line`, lineNo, key);
      seen.add(key);
    }
    try {
      switch (key) {
        case 'StorePath':
          if (formatStorePath(parseStorePath(value, storeDir)) !== value) {
            throw new LineError(`store path ${JSON.stringify(value)} is not in canonical form`);
          }
          storePath = value;
          break;
        case 'URL':
          if (value.length === 0) throw new LineError('URL is empty');
          url = value;
          break;
        case 'Compression':
          if (value === '') compression = 'bzip2';
          else if ((COMPRESSION_METHODS as readonly string[]).includes(value))
            compression = value as CompressionMethod;
          else throw new LineError(`unknown compression method ${JSON.stringify(value)}`);
          break;
        case 'FileHash':
          fileHash = parseAnyHash(value);
          break;
        case 'FileSize':
          fileSize = parseSize(value);
          break;
        case 'NarHash':
          narHash = parseAnyHash(value);
          break;
        case 'NarSize':
          narSize = parseSize(value);
          if (narSize === 0) throw new LineError('NarSize is zero');
          break;
        case 'References': {
          const set = new Set<string>();
          for (const item of value.split(' ')) {
            if (item === '') continue;
            parseStorePathBasename(item, storeDir);
            set.add(item);
          }
          references = [...set].sort(compareUtf8);
          break;
        }
        case 'Deriver':
          if (value !== 'unknown-deriver') {
            parseStorePathBasename(value, storeDir);
            deriver = value;
          }
          break;
        case 'Sig':
          sigs.push(checkSignature(value));
          break;
        case 'CA':
          if (value !== '') {
            parseContentAddress(value);
            ca = value;
          }
          break;
        default:
          // Unknown keys (e.g. the legacy `System:`) are ignored, as Nix does.
          break;
      }
    } catch (e) {
      if (e instanceof LineError || e instanceof NixcacheError) throw fail(e.message, lineNo, key);
      throw e;
    }
  }
  if (storePath === undefined) throw fail('missing required field', undefined, 'StorePath');
  if (narHash === undefined) throw fail('missing required field', undefined, 'NarHash');
  if (url === undefined) throw fail('missing required field', undefined, 'URL');
  if (narSize === undefined) throw fail('missing required field', undefined, 'NarSize');

  const info: NarInfo = {
    storePath,
    url,
    compression: compression ?? 'bzip2',
    ...(fileHash && { fileHash }),
    ...(fileSize !== undefined && { fileSize }),
    narHash,
    narSize,
    references,
    ...(deriver !== undefined && { deriver }),
    sigs,
    ...(ca !== undefined && { ca }),
  };
  return { ...info, original: { text, canonical: renderNarInfo(info) } };
}
