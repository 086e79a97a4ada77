/**
 * The check of one path that `verifyCache` makes, on the main thread or in a worker thread
 * (verify-worker.ts): read and parse its narinfo, check its signatures (or CA claim), and with
 * `contents` stream its NAR through every hash and size check. Never throws for a bad path: the
 * outcome is a report.
 */
import { NixcacheError } from '../errors.js';
import { NarDecoder } from '../nar/read.js';
import type { NarInfo } from '../narinfo/types.js';
import { contentAddressContradiction, type NarInfoVerification } from '../signing/verify.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { HASH_PART_LENGTH } from '../store-path/store-path.js';
import {
  ContentAddressHasher,
  checkContentAddressHash,
  parseClaimedContentAddress,
} from './content-address.js';

/** How one path fared, worst first: a network error says nothing about the data. */
export type PathStatus = 'ok' | 'untrusted' | 'corrupt' | 'missing-nar' | 'missing' | 'unreadable' | 'error';

export interface PathReport {
  readonly hashPart: string;
  readonly storePath?: string;
  readonly status: PathStatus;
  /** Why it is not ok. */
  readonly reason?: string;
  readonly signedBy?: readonly string[];
  readonly narSize?: number;
}

function statusOfContentError(e: unknown): PathStatus {
  if (!(e instanceof NixcacheError)) return 'error';
  switch (e.code) {
    case 'NOT_FOUND':
      return 'missing-nar';
    case 'INTEGRITY':
    case 'COMPRESSION':
    case 'BAD_NAR':
      return 'corrupt';
    case 'BAD_NARINFO':
      return 'unreadable';
    default:
      return 'error';
  }
}

/** Streams the NAR through every check, the CA hash included; throws on the first problem. */
async function checkContents(
  store: BinaryCacheStore,
  info: NarInfo,
  signal?: AbortSignal,
  onBytes?: (bytes: number) => void,
): Promise<number> {
  const ca = info.ca === undefined ? undefined : parseClaimedContentAddress(info.storePath, info.ca);
  // getNar checks NarHash in its own algorithm by the end of the stream; it is the CA's NAR hash
  // when the algorithms agree.
  const caHasher = ca && new ContentAddressHasher(ca, info.narHash.algorithm);
  const decoder = new NarDecoder(caHasher ?? {});
  let size = 0;
  for await (const chunk of store.getNar(info, { ...(signal && { signal }) })) {
    decoder.write(chunk);
    caHasher?.update(chunk);
    size += chunk.length;
    onBytes?.(chunk.length);
  }
  decoder.end();
  if (ca) checkContentAddressHash(info.storePath, ca, caHasher!.result(info.narHash));
  return size;
}

/** How the signatures of one narinfo are checked. */
export type CheckTrust = (info: NarInfo) => NarInfoVerification | Promise<NarInfoVerification>;

/** The hash part a query (hash part, basename or full path) names. */
export function hashPartOfQuery(query: string): string {
  return query.startsWith('/')
    ? query.slice(query.lastIndexOf('/') + 1, query.lastIndexOf('/') + 1 + HASH_PART_LENGTH)
    : query.slice(0, HASH_PART_LENGTH);
}

/** Checks one path; the outcome, good or bad, is the report. */
export async function verifyOne(
  store: BinaryCacheStore,
  query: string,
  checkTrust: CheckTrust,
  contents: boolean,
  signal?: AbortSignal,
  onBytes?: (bytes: number) => void,
): Promise<PathReport> {
  const hashPart = hashPartOfQuery(query);
  let info: NarInfo | undefined;
  try {
    info = await store.getNarInfo(query, { ...(signal && { signal }) });
  } catch (e) {
    const status: PathStatus =
      e instanceof NixcacheError && ['BAD_NARINFO', 'INTEGRITY', 'BAD_STORE_PATH'].includes(e.code)
        ? 'unreadable'
        : 'error';
    return { hashPart, status, reason: (e as Error).message };
  }
  if (!info) return { hashPart, status: 'missing', reason: 'no narinfo in the cache' };
  const base = { hashPart, storePath: info.storePath, narSize: info.narSize };
  const trust = await checkTrust(info);
  // A narinfo that contradicts itself is corrupt whoever signed it; no download can help.
  const contradiction = contentAddressContradiction(info);
  if (contradiction !== undefined) {
    return {
      ...base,
      status: 'corrupt',
      reason: `${info.storePath}: ${contradiction}`,
      signedBy: trust.signedBy,
    };
  }
  // A CA claim whose hash covers the contents makes the path trusted once checkContents (which
  // hashes exactly what the claim covers) passed; without contents it stays unproven.
  const provisional = !trust.trusted && trust.contentAddressed && trust.contentAddressNeedsContents === true;
  const problems: string[] = [];
  if (provisional && !contents) {
    problems.push(
      `not signed by a trusted key, and its CA claim ${info.ca} covers the contents, which were not checked (--no-contents)`,
    );
  } else if (!trust.trusted && !provisional) {
    const why = [
      ...trust.invalidSignatures.map((s) => `invalid signature by ${s.keyName || '?'}: ${s.reason}`),
      ...(trust.unknownSignatures.length
        ? [`signed only by untrusted keys: ${trust.unknownSignatures.map((s) => s.split(':')[0]).join(', ')}`]
        : []),
      ...(info.sigs.length === 0 ? ['no signatures'] : []),
      ...(trust.contentAddressProblem ? [`CA claim: ${trust.contentAddressProblem}`] : []),
    ];
    problems.push(`not signed by a trusted key (${why.join('; ') || 'no valid signature'})`);
  }
  if (contents) {
    try {
      await checkContents(store, info, signal, onBytes);
    } catch (e) {
      return {
        ...base,
        status: statusOfContentError(e),
        reason: [(e as Error).message, ...problems].join('; '),
        signedBy: trust.signedBy,
      };
    }
  }
  if (problems.length)
    return { ...base, status: 'untrusted', reason: problems.join('; '), signedBy: trust.signedBy };
  return { ...base, status: 'ok', signedBy: trust.signedBy };
}
