/**
 * `lintCache`: runs the narinfo lint rules (lint-rules.ts) over a whole cache, streaming its
 * listing with bounded memory (`forEachBounded`), and with `fix` repairs what can be repaired
 * without touching a fingerprint field, so every signature stays valid:
 * - the narinfo is rewritten in Nix's canonical form (field order, nix32 hashes, no unknown keys,
 *   explicit Compression, no `unknown-deriver`, sorted unique Sig lines) with the conditional
 *   read-modify-write of `sign` (`rewriteNarInfo`), so a concurrent signer's signature is kept;
 * - a missing FileHash/FileSize is computed from the NAR file;
 * - a missing Compression, or a URL whose extension contradicts it, is settled by the data's
 *   magic number: Compression is set to what the data is, and the file gets a copy under the name
 *   that compression gives it (the old name stays: other narinfos may share it);
 * - a missing `.ls` listing is built from the NAR.
 * What cannot be fixed (a CA claim that does not compute, another store directory, text that does
 * not parse) is reported with `fixed: false`, never dropped.
 */

import { COMPRESSION_MAGIC_LENGTH, detectCompression, narFileExtension } from '../compression/registry.js';
import { NixcacheError } from '../errors.js';
import { createHasher } from '../hash/hasher.js';
import { fromUtf8 } from '../internal/bytes.js';
import { formatNarListing, narListing } from '../nar/listing.js';
import { renderNarInfo } from '../narinfo/format.js';
import type { CompressionMethod, NarInfo } from '../narinfo/types.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { listingKey, narInfoKey, narUrlToKey } from '../store/layout.js';
import { canonicalNarInfo, type LintFinding, type LintRule, lintNarInfoText } from './lint-rules.js';
import { forEachBounded } from './pipeline.js';
import { withRetry } from './retry.js';
import { rewriteNarInfo } from './rewrite.js';

export interface LintOptions {
  /** Repair what can be repaired (conditional writes). */
  readonly fix?: boolean;
  /**
   * Whether the cache writes `.ls` listings (then a missing one is a finding). Default: the store
   * URL says so (`write-nar-listing=1`) or the cache holds at least one listing.
   */
  readonly listings?: boolean;
  /** Narinfos checked at once (default 8). */
  readonly parallelism?: number;
  readonly signal?: AbortSignal;
  /** Each finding, once the narinfo is done (and fixed, with `fix`). */
  readonly onFinding?: (finding: LintReport) => void | Promise<void>;
}

/** A finding as reported: with `fix`, whether it was fixed (and why not when it could not be). */
export interface LintReport extends LintFinding {
  readonly fixed: boolean;
  readonly fixError?: string;
}

export interface LintSummary {
  readonly narinfos: number;
  readonly findings: number;
  readonly fixed: number;
  readonly unfixed: number;
  readonly rules: Readonly<Partial<Record<LintRule, number>>>;
}

/** True when the cache holds a `.ls` file (stops at the first one). */
async function hasAnyListing(store: BinaryCacheStore, signal?: AbortSignal): Promise<boolean> {
  for await (const key of store.backend.list('', { recursive: false, ...(signal && { signal }) })) {
    if (key.endsWith('.ls')) return true;
  }
  return false;
}

/** Size and sha256 of the stored (compressed) NAR file. */
async function measureFile(
  store: BinaryCacheStore,
  key: string,
  signal?: AbortSignal,
): Promise<{ size: number; digest: Uint8Array }> {
  const body = await store.getFileStream(key, { ...(signal && { signal }) });
  if (!body)
    throw new NixcacheError('NOT_FOUND', `${store.location}/${key}: the NAR file is missing`, { url: key });
  const hasher = createHasher('sha256');
  let size = 0;
  for await (const chunk of body) {
    hasher.update(chunk);
    size += chunk.length;
  }
  return { size, digest: hasher.digest() };
}

/** The URL with the extension `compression` gives a NAR (unchanged when it has no `.nar`). */
function urlWithExtension(url: string, compression: CompressionMethod): string {
  const at = url.lastIndexOf('.nar');
  return at < 0 ? url : `${url.slice(0, at + 4)}${narFileExtension(compression)}`;
}

/** The first bytes of a stored file, enough to recognise its compression. */
async function fileHead(store: BinaryCacheStore, key: string, signal?: AbortSignal): Promise<Uint8Array> {
  const body = await store.getFileStream(key, { ...(signal && { signal }) });
  if (!body)
    throw new NixcacheError('NOT_FOUND', `${store.location}/${key}: the NAR file is missing`, { url: key });
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of body) {
    parts.push(chunk);
    n += chunk.length;
    if (n >= COMPRESSION_MAGIC_LENGTH) break;
  }
  return Buffer.concat(parts).subarray(0, COMPRESSION_MAGIC_LENGTH);
}

/**
 * Applies the fixes for `findings` of one narinfo.
 *
 * @throws whatever the store throws; the caller reports it on the findings.
 */
async function fixNarInfo(
  store: BinaryCacheStore,
  hashPart: string,
  info: NarInfo,
  findings: readonly LintFinding[],
  signal?: AbortSignal,
): Promise<void> {
  const rules = new Set(findings.map((f) => f.rule));
  const read = { ...(signal && { signal }) };
  let file: { size: number; digest: Uint8Array } | undefined;
  let url: string | undefined;
  if (rules.has('missing-file-hash')) file = await measureFile(store, narUrlToKey(info.url).key, signal);
  let compression: CompressionMethod | undefined;
  if (rules.has('url-extension') || rules.has('missing-compression')) {
    // Which is right, the URL's extension or Compression (bzip2 when absent)? The data says.
    const key = narUrlToKey(info.url).key;
    const detected = detectCompression(await fileHead(store, key, signal));
    if (detected !== undefined && detected !== info.compression) compression = detected;
    const target = urlWithExtension(info.url, compression ?? info.compression);
    if (target !== info.url) {
      url = target;
      const to = narUrlToKey(target).key;
      if (!(await store.hasFile(to, read))) {
        const head = await store.backend.head(key, read);
        const body = await store.getFileStream(key, read);
        if (!body)
          throw new NixcacheError('NOT_FOUND', `${store.location}/${key}: the NAR file is missing`, {});
        await store.putFile(to, body, { ...read, ...(head?.size !== undefined && { size: head.size }) });
      }
    }
  }
  if (rules.has('missing-listing')) {
    const listing = await narListing(store.getNar(info, read));
    const bytes = new TextEncoder().encode(formatNarListing(listing));
    await withRetry(
      () => store.putFile(listingKey(hashPart), bytes, { compression: store.config.lsCompression, ...read }),
      { signal },
    );
  }
  await rewriteNarInfo(
    store,
    hashPart,
    (current) => {
      let next: NarInfo = canonicalNarInfo(current);
      // What was measured is about the file the narinfo named then.
      if (file && current.url === info.url && (next.fileHash === undefined || next.fileSize === undefined)) {
        next = { ...next, fileHash: { algorithm: 'sha256', digest: file.digest }, fileSize: file.size };
      }
      if (url !== undefined && current.url === info.url) next = { ...next, url };
      if (compression !== undefined && current.url === info.url) next = { ...next, compression };
      return renderNarInfo(next) === current.original?.text ? current : next;
    },
    read,
  );
}

/**
 * Lints every narinfo of the cache; with `fix`, repairs what can be repaired.
 *
 * @throws {NixcacheError} UNSUPPORTED for caches that cannot be listed (plain HTTP); ABORTED;
 *   NETWORK/IO when listing fails. Failures on one narinfo are reported on its findings.
 * @example await lintCache(store, { onFinding: (f) => console.log(f.rule, f.storePath) })
 */
export async function lintCache(store: BinaryCacheStore, options: LintOptions = {}): Promise<LintSummary> {
  const signal = options.signal;
  const read = { ...(signal && { signal }) };
  const cacheInfo = await withRetry(() => store.getCacheInfo(read), { signal });
  const storeDir = cacheInfo?.storeDir ?? store.storeDir;
  const listings = options.listings ?? (store.config.writeNarListing || (await hasAnyListing(store, signal)));
  const rules: Partial<Record<LintRule, number>> = {};
  let narinfos = 0;
  let findingsCount = 0;
  let fixed = 0;
  await forEachBounded(
    store.listNarInfos(read),
    { parallelism: options.parallelism ?? 8, ...read },
    async (hash) => {
      let bytes: Uint8Array | undefined;
      let readError: string | undefined;
      try {
        bytes = await withRetry(() => store.getFile(narInfoKey(hash), read), { signal });
        if (bytes === undefined) return;
      } catch (e) {
        // One narinfo that cannot be read (too large, a server error after retries) is a finding,
        // not the end of the walk.
        if (signal?.aborted) throw e;
        readError = (e as Error).message;
      }
      narinfos++;
      const result =
        bytes === undefined
          ? {
              findings: [
                {
                  rule: 'unreadable' as const,
                  hashPart: hash,
                  message: readError ?? 'unreadable',
                  fixable: false,
                },
              ],
            }
          : lintNarInfoText(fromUtf8(bytes), hash, storeDir);
      const findings = [...result.findings];
      const info = result.info;
      const foreign = findings.some((f) => f.rule === 'store-dir-mismatch' || f.rule === 'unreadable');
      if (listings && info && !foreign && !(await store.hasFile(listingKey(hash), read))) {
        findings.push({
          rule: 'missing-listing',
          hashPart: hash,
          storePath: info.storePath,
          message: `no ${listingKey(hash)} although the cache writes NAR listings`,
          fixable: true,
        });
      }
      let fixError: string | undefined;
      let didFix = false;
      if (options.fix && info && !foreign && findings.some((f) => f.fixable)) {
        try {
          await fixNarInfo(
            store,
            hash,
            info,
            findings.filter((f) => f.fixable),
            signal,
          );
          didFix = true;
        } catch (e) {
          if (signal?.aborted) throw e;
          fixError = (e as Error).message;
        }
      }
      for (const f of findings) {
        const report: LintReport = {
          ...f,
          fixed: didFix && f.fixable,
          ...(options.fix && f.fixable && fixError !== undefined && { fixError }),
        };
        findingsCount++;
        if (report.fixed) fixed++;
        rules[f.rule] = (rules[f.rule] ?? 0) + 1;
        await options.onFinding?.(report);
      }
    },
  );
  return { narinfos, findings: findingsCount, fixed, unfixed: findingsCount - fixed, rules };
}
