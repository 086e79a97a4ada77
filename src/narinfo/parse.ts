/**
 * Reading narinfo text (nix-formats.md §4.1-4.2, §4.4). Accepts everything real Nix and real caches
 * write (any hash encoding, missing Compression, `unknown-deriver`, missing References, legacy
 * `System:` and other unknown keys) and rejects what Nix would misread (CRLF, a missing `": "`,
 * blank lines) with an error naming the source, line and field.
 *
 * One pass over a reused one-byte-per-character copy of the text, no per-line arrays: a line in
 * the key order and spelling Nix writes (canonical store paths, `sha256:<nix32>` hashes, sorted
 * references, decimal sizes) is checked with character tables, store path basenames four bytes at
 * a time, and read up to its newline without looking for it first. Only what fails there goes
 * through the general path (lines found with `indexOf`) and the general parsers, which then
 * produce the error message. Nothing is rendered: `formatNarInfo` decides at write time whether
 * the original text still holds.
 */
import { NixcacheError } from '../errors.js';
import type { NixHash } from '../hash/hash.js';
import { parseHash } from '../hash/hash.js';
import { compareUtf8 } from '../internal/bytes.js';
import { decodeNix32At } from '../nix32.js';
import { parseContentAddress } from '../store-path/content-address.js';
import {
  formatStorePath,
  parseStorePath,
  parseStorePathBasename,
  STORE_DIR,
} from '../store-path/store-path.js';
import {
  basenameLineEnd,
  bytesBefore,
  codeUnits,
  HASH_LENGTH,
  hasCodesAt,
  isBasenameAt,
  isCanonicalDir,
  isHashPartAt,
  isNameOk,
  nameEndAt,
  SCRATCH_LIMIT,
  storePathEnd,
  wordsOf,
} from './scan.js';
import { COMPRESSION_METHODS, type CompressionMethod, NARINFO_KEYS, type NarInfo } from './types.js';

export interface ParseNarInfoOptions {
  /** Name used in error messages, e.g. the file name `<hash>.narinfo`. */
  readonly source?: string;
  /** Store directory the StorePath must be in (default `/nix/store`). */
  readonly storeDir?: string;
}

// The keys Nix reads, by index; all but Sig may appear once. Matched on the bytes, so no key
// string is made for a well-formed line.
const KEYS = NARINFO_KEYS;
const keyIndex = (name: (typeof NARINFO_KEYS)[number]) => KEYS.indexOf(name);
const STORE_PATH = keyIndex('StorePath');
const URL_KEY = keyIndex('URL');
const COMPRESSION = keyIndex('Compression');
const FILE_HASH = keyIndex('FileHash');
const FILE_SIZE = keyIndex('FileSize');
const NAR_HASH = keyIndex('NarHash');
const NAR_SIZE = keyIndex('NarSize');
const REFERENCES = keyIndex('References');
const DERIVER = keyIndex('Deriver');
const SIG = keyIndex('Sig');
const CA = keyIndex('CA');
const KEY_CODES = KEYS.map((k) => Uint8Array.from(k, (c) => c.charCodeAt(0)));
const UNKNOWN_DERIVER = Uint8Array.from('unknown-deriver', (c) => c.charCodeAt(0));

/** The index in KEYS of the key in `bytes[start, end)`, or -1 for an unknown key. */
function keyAt(bytes: Uint8Array, start: number, end: number): number {
  for (let k = 0; k < KEY_CODES.length; k++) {
    const code = KEY_CODES[k]!;
    if (code.length === end - start && hasCodesAt(bytes, start, code)) return k;
  }
  return -1;
}

class LineError extends Error {}

function checkStorePath(
  value: string,
  bytes: Uint8Array,
  words: Int32Array,
  start: number,
  storeDir: string,
): void {
  const n = storeDir.length;
  if (
    value.length > n + 1 &&
    value.charCodeAt(n) === 47 /* / */ &&
    value.startsWith(storeDir) &&
    isCanonicalDir(storeDir) &&
    isBasenameAt(bytes, words, start + n + 1, start + value.length)
  ) {
    return;
  }
  if (formatStorePath(parseStorePath(value, storeDir)) !== value) {
    throw new LineError(`store path ${JSON.stringify(value)} is not in canonical form`);
  }
}

/**
 * Parses the decimal size in `bytes[start, end)` as Nix does (digits only), bounded to what a JS
 * number holds exactly.
 */
function parseSizeAt(text: string, bytes: Uint8Array, start: number, end: number): number {
  let n = start === end ? Number.NaN : 0;
  for (let i = start; i < end; i++) {
    const d = bytes[i]! - 48;
    if (d < 0 || d > 9) n = Number.NaN;
    n = n * 10 + d;
  }
  if (Number.isNaN(n)) {
    throw new LineError(`expected a decimal number, got ${JSON.stringify(text.slice(start, end))}`);
  }
  if (!Number.isSafeInteger(n)) throw new LineError(`number ${text.slice(start, end)} is too large`);
  return n;
}

const COMPRESSION_CODES = COMPRESSION_METHODS.map((m) => Uint8Array.from(m, (c) => c.charCodeAt(0)));

/** The compression method named by `bytes[start, end)` (the shared constant, not a copy). */
function compressionAt(text: string, bytes: Uint8Array, start: number, end: number): CompressionMethod {
  if (start === end) return 'bzip2';
  next: for (let k = 0; k < COMPRESSION_CODES.length; k++) {
    const code = COMPRESSION_CODES[k]!;
    if (code.length !== end - start) continue;
    for (let i = 0; i < code.length; i++) if (code[i] !== bytes[start + i]) continue next;
    return COMPRESSION_METHODS[k]!;
  }
  throw new LineError(`unknown compression method ${JSON.stringify(text.slice(start, end))}`);
}

/** The index in COMPRESSION_METHODS of the method named from `start` up to a newline, or -1. */
function compressionIndexAt(bytes: Uint8Array, start: number): number {
  for (let k = 0; k < COMPRESSION_CODES.length; k++) {
    const code = COMPRESSION_CODES[k]!;
    if (bytes[start + code.length] === 10 && hasCodesAt(bytes, start, code)) return k;
  }
  return -1;
}

/** Where the digits from `start` end at a newline, or -1 (none, or something else after them). */
function digitsEnd(bytes: Uint8Array, start: number): number {
  let i = start;
  while ((bytes[i]! - 48) >>> 0 <= 9) i++;
  return i > start && bytes[i] === 10 ? i : -1;
}

/** The number written by the digits `bytes[start, end)`, or -1 when it is too large. */
function sizeAt(bytes: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) n = n * 10 + (bytes[i]! - 48);
  return Number.isSafeInteger(n) ? n : -1;
}

const SHA256_PREFIX = Uint8Array.from('sha256:', (c) => c.charCodeAt(0));

/** The hash in `text[start, end)`. */
function parseHashAt(text: string, bytes: Uint8Array, start: number, end: number): NixHash {
  if (end - start === 59) {
    let prefix = true;
    for (let i = 0; i < 7; i++) if (bytes[start + i] !== SHA256_PREFIX[i]) prefix = false;
    // `sha256:<nix32>`, the spelling Nix writes. Anything wrong in it is explained below.
    const digest = prefix ? decodeNix32At(bytes, start + 7, 32) : undefined;
    if (digest) return { algorithm: 'sha256', digest };
  }
  return parseAnyHash(text.slice(start, end));
}

/** Length of `sha256:<52 nix32 digits>`. */
const SHA256_LINE_LENGTH = 59;

/** The hash `sha256:<nix32>` from `start` up to a newline, or undefined. */
function sha256LineAt(bytes: Uint8Array, start: number): NixHash | undefined {
  if (bytes[start + SHA256_LINE_LENGTH] !== 10 || !hasCodesAt(bytes, start, SHA256_PREFIX)) return undefined;
  const digest = decodeNix32At(bytes, start + SHA256_PREFIX.length, 32);
  return digest ? { algorithm: 'sha256', digest } : undefined;
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

/** Where each reference starts and ends, two entries per reference; reused between calls. */
let bounds = new Int32Array(256);
/** Where the last `parseReferences(…, -1, …)` found the newline. */
let referencesEnd = -1;

/**
 * The basenames of a References line, sorted and unique. A first pass checks them and notes where
 * they are; the second makes the strings, into an array of the right length.
 *
 * `end` is the line's newline, or -1 to have the character checks find it (then stored in
 * `referencesEnd`): in that case, undefined means some item needs the general parser, and the
 * caller should find the newline and call again.
 */
function parseReferences(
  text: string,
  bytes: Uint8Array,
  words: Int32Array,
  start: number,
  end: number,
  storeDir: string,
): string[] | undefined {
  const hashLength = HASH_LENGTH;
  let found = bounds;
  let n = 0;
  let sorted = true;
  // Past the newline when it is not known: the scan stops at the first one anyway.
  const limit = end < 0 ? text.length : end;
  let at = start;
  while (at < limit) {
    const c = bytes[at];
    if (c === 32 /* space */) {
      at++;
      continue;
    }
    if (c === 10 /* newline */) break;
    // One pass checks the item and finds its end, at a space or the newline.
    const nameStart = at + hashLength + 1;
    let itemEnd = -1;
    if (nameStart < limit && bytes[nameStart - 1] === 45 /* - */ && isHashPartAt(words, at)) {
      itemEnd = nameEndAt(words, nameStart);
      const after = bytes[itemEnd];
      if ((after !== 32 && after !== 10) || !isNameOk(bytes, nameStart, itemEnd)) itemEnd = -1;
    }
    if (itemEnd < 0) {
      if (end < 0) return undefined;
      itemEnd = text.indexOf(' ', at);
      if (itemEnd < 0 || itemEnd > end) itemEnd = end;
      parseStorePathBasename(text.slice(at, itemEnd), storeDir);
    }
    if (n > 0) {
      // Basenames are ASCII, so their byte order is Nix's. Neighbours nearly always differ in the
      // first bytes of their (checked, 32-character) hash parts.
      const prev = found[n - 2]!;
      let i = 0;
      while (i < hashLength && bytes[prev + i] === bytes[at + i]) i++;
      const d = i < hashLength ? bytes[at + i]! - bytes[prev + i]! : 0;
      if (d < 0 || (d === 0 && !bytesBefore(bytes, prev, found[n - 1]!, at, itemEnd))) sorted = false;
    }
    if (n === found.length) {
      const more = new Int32Array(2 * n);
      more.set(found);
      found = more;
      if (n < SCRATCH_LIMIT) bounds = more;
    }
    found[n] = at;
    found[n + 1] = itemEnd;
    n += 2;
    at = itemEnd;
    if (bytes[at] === 10) break;
    // Skip the one space that usually follows.
    at++;
  }
  referencesEnd = at;
  const refs = new Array<string>(n >> 1);
  for (let i = 0; i < n; i += 2) refs[i >> 1] = text.slice(found[i]!, found[i + 1]!);
  return sorted ? refs : [...new Set(refs)].sort(compareUtf8);
}

function badNarInfo(source: string, reason: string, line?: number, field?: string): NixcacheError {
  return new NixcacheError(
    'BAD_NARINFO',
    `${source}${line === undefined ? '' : ` line ${line}`}${field === undefined ? '' : ` (${field})`}: ${reason}`,
    { source, ...(line === undefined ? {} : { line }), ...(field === undefined ? {} : { field }) },
  );
}

/** What the lines read so far have said. */
class Fields {
  storePath: string | undefined = undefined;
  url: string | undefined = undefined;
  compression: CompressionMethod | undefined = undefined;
  fileHash: NixHash | undefined = undefined;
  fileSize: number | undefined = undefined;
  narHash: NixHash | undefined = undefined;
  narSize: number | undefined = undefined;
  references: string[] = [];
  deriver: string | undefined = undefined;
  ca: string | undefined = undefined;
  readonly sigs: string[] = [];
  /** Bit i: key i has been read. */
  seen = 0;
  /** The key Nix would write next. */
  expected = STORE_PATH;
}

/**
 * Fast path: a line with the key Nix writes next and a value in the spelling Nix writes, read up
 * to the newline without looking for it first. Returns where the line ends, or -1 when it is
 * anything else (every error included), which `readLine` then reads and explains.
 */
function readUsualLine(
  f: Fields,
  text: string,
  bytes: Uint8Array,
  words: Int32Array,
  pos: number,
  storeDir: string,
): number {
  const guess = KEY_CODES[f.expected];
  if (
    guess !== undefined &&
    (f.seen & (1 << f.expected)) === 0 &&
    bytes[pos + guess.length] === 58 /* : */ &&
    bytes[pos + guess.length + 1] === 32 /* space */ &&
    hasCodesAt(bytes, pos, guess)
  ) {
    const valueStart = pos + guess.length + 2;
    let end = -1;
    switch (f.expected) {
      case STORE_PATH:
        end = storePathEnd(bytes, words, valueStart, storeDir);
        if (end >= 0) f.storePath = text.slice(valueStart, end);
        break;
      case COMPRESSION: {
        const method = compressionIndexAt(bytes, valueStart);
        if (method >= 0) {
          f.compression = COMPRESSION_METHODS[method];
          end = valueStart + COMPRESSION_CODES[method]!.length;
        }
        break;
      }
      case FILE_HASH:
      case NAR_HASH: {
        const hash = sha256LineAt(bytes, valueStart);
        if (hash) {
          if (f.expected === FILE_HASH) f.fileHash = hash;
          else f.narHash = hash;
          end = valueStart + SHA256_LINE_LENGTH;
        }
        break;
      }
      case FILE_SIZE:
      case NAR_SIZE: {
        const digits = digitsEnd(bytes, valueStart);
        const size = digits < 0 ? -1 : sizeAt(bytes, valueStart, digits);
        // A NarSize of 0 is an error, explained below.
        if (size > 0 || (size === 0 && f.expected === FILE_SIZE)) {
          if (f.expected === FILE_SIZE) f.fileSize = size;
          else f.narSize = size;
          end = digits;
        }
        break;
      }
      case REFERENCES: {
        const refs = parseReferences(text, bytes, words, valueStart, -1, storeDir);
        if (refs) {
          f.references = refs;
          end = referencesEnd;
        }
        break;
      }
      case DERIVER:
        if (
          bytes[valueStart + UNKNOWN_DERIVER.length] === 10 &&
          hasCodesAt(bytes, valueStart, UNKNOWN_DERIVER)
        ) {
          end = valueStart + UNKNOWN_DERIVER.length;
        } else {
          end = basenameLineEnd(bytes, words, valueStart);
          if (end >= 0) f.deriver = text.slice(valueStart, end);
        }
        break;
      default:
        // URL, Sig and CA: found with indexOf below.
        break;
    }
    if (end >= 0) {
      f.seen |= 1 << f.expected;
      f.expected++;
    }
    return end;
  }
  return -1;
}

/** Reads the line at `pos` (any key and spelling) and returns where the next line starts. */
function readLine(
  f: Fields,
  text: string,
  bytes: Uint8Array,
  words: Int32Array,
  pos: number,
  lineNo: number,
  cr: number,
  source: string,
  storeDir: string,
): number {
  const guess = KEY_CODES[f.expected];
  const nl = text.indexOf('\n', pos);
  if (cr >= 0 && cr < nl) {
    throw badNarInfo(source, 'carriage return in line (CRLF line endings are not supported)', lineNo);
  }
  if (nl === pos) throw badNarInfo(source, 'empty line', lineNo);
  let key = -1;
  let colon = pos;
  // Nix writes the keys in KEYS order: try the one that would come next first, which also
  // tells where the colon is.
  if (guess !== undefined && bytes[pos + guess.length] === 58 /* : */ && hasCodesAt(bytes, pos, guess)) {
    key = f.expected;
    colon = pos + guess.length;
  } else {
    // Keys are short: a byte loop finds the colon sooner than a call to indexOf.
    while (colon < nl && bytes[colon] !== 58 /* : */) colon++;
    if (colon === nl) throw badNarInfo(source, "expected 'Key: value'", lineNo);
    key = keyAt(bytes, pos, colon);
  }
  if (bytes[colon + 1] !== 32 /* space */) {
    throw badNarInfo(source, "expected ': ' after the key", lineNo, text.slice(pos, colon));
  }
  if (key >= 0) f.expected = key === SIG ? SIG : key + 1;
  if (key >= 0 && key !== SIG) {
    if (f.seen & (1 << key)) throw badNarInfo(source, `duplicate ${KEYS[key]} line`, lineNo, KEYS[key]);
    f.seen |= 1 << key;
  }
  const valueStart = colon + 2;
  const lineStart = pos;
  try {
    switch (key) {
      case STORE_PATH: {
        const value = text.slice(valueStart, nl);
        checkStorePath(value, bytes, words, valueStart, storeDir);
        f.storePath = value;
        break;
      }
      case URL_KEY:
        if (valueStart === nl) throw new LineError('URL is empty');
        f.url = text.slice(valueStart, nl);
        break;
      case COMPRESSION:
        f.compression = compressionAt(text, bytes, valueStart, nl);
        break;
      case FILE_HASH:
        f.fileHash = parseHashAt(text, bytes, valueStart, nl);
        break;
      case FILE_SIZE:
        f.fileSize = parseSizeAt(text, bytes, valueStart, nl);
        break;
      case NAR_HASH:
        f.narHash = parseHashAt(text, bytes, valueStart, nl);
        break;
      case NAR_SIZE:
        f.narSize = parseSizeAt(text, bytes, valueStart, nl);
        if (f.narSize === 0) throw new LineError('NarSize is zero');
        break;
      case REFERENCES:
        f.references = parseReferences(text, bytes, words, valueStart, nl, storeDir)!;
        break;
      case DERIVER: {
        const value = text.slice(valueStart, nl);
        if (value !== 'unknown-deriver') {
          if (!isBasenameAt(bytes, words, valueStart, nl)) parseStorePathBasename(value, storeDir);
          f.deriver = value;
        }
        break;
      }
      case SIG: {
        const value = text.slice(valueStart, nl);
        const sep = value.indexOf(':');
        if (sep <= 0 || sep === value.length - 1) {
          throw new LineError(`signature ${JSON.stringify(value)} is not <key name>:<base64>`);
        }
        f.sigs.push(value);
        break;
      }
      case CA: {
        const value = text.slice(valueStart, nl);
        if (value !== '') {
          parseContentAddress(value);
          f.ca = value;
        }
        break;
      }
      default:
        // Unknown keys (e.g. the legacy `System:`) are ignored, as Nix does.
        break;
    }
  } catch (e) {
    if (e instanceof LineError || e instanceof NixcacheError)
      throw badNarInfo(source, e.message, lineNo, text.slice(lineStart, colon));
    throw e;
  }
  return nl + 1;
}

/**
 * Parses narinfo text.
 *
 * @throws {NixcacheError} BAD_NARINFO, e.g. `abc.narinfo line 5 (NarHash): expected a sha256 hash…`;
 *   `data` holds source, line and field.
 * @example parseNarInfo(await (await fetch(url)).text(), { source: 'abc.narinfo' })
 */
export function parseNarInfo(text: string, options: ParseNarInfoOptions = {}): NarInfo {
  const storeDir = options.storeDir ?? STORE_DIR;
  const source = options.source ?? 'narinfo';
  if (text.length === 0) throw badNarInfo(source, 'empty file');
  if (text.charCodeAt(text.length - 1) !== 10) {
    throw badNarInfo(source, 'the last line does not end with a newline', text.split('\n').length);
  }
  // Small functions for the lines: V8 optimizes each sooner than one large one.
  const f = new Fields();
  const bytes = codeUnits(text);
  const words = wordsOf(bytes);
  const cr = text.indexOf('\r');
  let lineNo = 0;
  for (let pos = 0; pos < text.length; ) {
    lineNo++;
    const end = readUsualLine(f, text, bytes, words, pos, storeDir);
    pos = end >= 0 ? end + 1 : readLine(f, text, bytes, words, pos, lineNo, cr, source, storeDir);
  }
  const { storePath, url, compression, fileHash, fileSize, narHash, narSize, references, deriver, sigs, ca } =
    f;
  if (storePath === undefined) throw badNarInfo(source, 'missing required field', undefined, 'StorePath');
  if (narHash === undefined) throw badNarInfo(source, 'missing required field', undefined, 'NarHash');
  if (url === undefined) throw badNarInfo(source, 'missing required field', undefined, 'URL');
  if (narSize === undefined) throw badNarInfo(source, 'missing required field', undefined, 'NarSize');

  // Built field by field in the order of a Nix-written file, so every parsed info has one shape.
  const info = { storePath, url, compression: compression ?? 'bzip2' } as {
    -readonly [K in keyof NarInfo]: NarInfo[K];
  };
  if (fileHash) info.fileHash = fileHash;
  if (fileSize !== undefined) info.fileSize = fileSize;
  info.narHash = narHash;
  info.narSize = narSize;
  info.references = references;
  if (deriver !== undefined) info.deriver = deriver;
  info.sigs = sigs;
  if (ca !== undefined) info.ca = ca;
  info.original = { text };
  return info;
}
