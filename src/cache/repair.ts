/**
 * `repairCache`: finds what breaks substitution from a binary cache and fixes it (nix-formats.md
 * §7.2, the invariant "a visible narinfo implies its NAR and the narinfos of its references"):
 *
 * - a narinfo whose NAR is missing, or has another size than FileSize: the NAR is uploaded again
 *   from the local store directory or from another cache when the path is there with the same
 *   NarHash (the narinfo is rewritten with the new URL/FileHash/FileSize; its signatures stay
 *   valid, as the fingerprint does not cover them); otherwise the narinfo is deleted;
 * - a narinfo whose references have no narinfo: each missing reference is pushed (with its
 *   closure) from the local store directory, or copied from another cache; otherwise the narinfo
 *   is deleted;
 * - then every narinfo whose closure is now incomplete (it refers, transitively, to a deleted
 *   one) is deleted too, referrers first, so the cache stays consistent at every instant;
 * - incomplete uploads older than the grace period (S3 multipart uploads; temporary and lock
 *   files on file://) are aborted.
 *
 * NARs left without a narinfo are not deleted here: `collectGarbage` does that.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { NixcacheError } from '../errors.js';
import { formatHash, hashEquals } from '../hash/hash.js';
import { dumpPath } from '../nar/node/dump.js';
import type { NarInfo } from '../narinfo/types.js';
import type { SecretKey } from '../signing/keys.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { listingKey, narInfoKey } from '../store/layout.js';
import { parseStorePath, parseStorePathBasename } from '../store-path/store-path.js';
import { GONE, HAS_LS, HAS_NARINFO, housekeeping, scanCache, UNREADABLE } from './cache-graph.js';
import { copyPaths } from './copy.js';
import { DEFAULT_GRACE_MS } from './gc.js';
import { forEachBounded } from './pipeline.js';
import { uploadStagedNar, writeNarInfo } from './publish.js';
import { pushPaths } from './push.js';
import { withRetry } from './retry.js';
import { stageNar } from './stage.js';

/** What was wrong. */
export type RepairProblem =
  | 'missing-nar'
  | 'wrong-size-nar'
  | 'missing-reference'
  | 'unreadable'
  | 'incomplete-closure'
  | 'stale-upload';

/** What was done about it (or, in a dry run, would be). */
export type RepairAction = 'reuploaded' | 'deleted' | 'aborted' | 'failed';

export interface RepairReport {
  readonly problem: RepairProblem;
  readonly action: RepairAction;
  /** The store path concerned (narinfo problems). */
  readonly path?: string;
  /** The object concerned (stale uploads; narinfos without a readable store path). */
  readonly key?: string;
  /** For missing references: the reference; for re-uploads: where from. */
  readonly detail?: string;
}

export interface RepairOptions {
  /** A local store directory to re-upload from (default `/nix/store`; `false` for none). */
  readonly storeDir?: string | false;
  /** Other caches to re-upload from, tried after the local store. */
  readonly from?: readonly BinaryCacheStore[];
  /** Keys to sign references pushed from the local store with (copies keep their signatures). */
  readonly secretKeys?: readonly SecretKey[];
  /** Abort incomplete uploads older than this (ms, default one day). */
  readonly graceMs?: number;
  /** Report; change nothing. */
  readonly dryRun?: boolean;
  readonly parallelism?: number;
  readonly now?: number;
  readonly signal?: AbortSignal;
  readonly onReport?: (report: RepairReport) => void;
}

export interface RepairResult {
  readonly dryRun: boolean;
  readonly reports: readonly RepairReport[];
  /** Narinfos checked. */
  readonly checked: number;
  /** True when the store cannot list incomplete uploads (s3rver, some S3-compatible servers). */
  readonly pendingUploadsUnsupported: boolean;
}

/** A source of a path's NAR with the expected NarHash. */
type NarSource = { readonly from: string; readonly nar: () => AsyncIterable<Uint8Array> };

/**
 * Checks a cache and repairs it (see the module comment).
 *
 * @throws {NixcacheError} UNSUPPORTED for stores that cannot list and delete (HTTP); NETWORK/IO,
 *   ABORTED. Per-path failures are reports with action `failed`.
 * @example
 * const { reports } = await repairCache(store, { storeDir: '/nix/store', from: [upstream] });
 */
export async function repairCache(
  store: BinaryCacheStore,
  options: RepairOptions = {},
): Promise<RepairResult> {
  const backend = housekeeping(store, 'repair');
  const signal = options.signal;
  const sig = signal ? { signal } : {};
  const dryRun = options.dryRun ?? false;
  const localDir = options.storeDir === false ? undefined : (options.storeDir ?? '/nix/store');
  const reports: RepairReport[] = [];
  const report = (r: RepairReport) => {
    reports.push(r);
    options.onReport?.(r);
  };

  const g = await scanCache(store, {
    ...(options.parallelism && { parallelism: options.parallelism }),
    ...sig,
  });
  const n = g.paths.size;
  let checked = 0;
  const brokenNar = new Map<number, 'missing-nar' | 'wrong-size-nar'>();
  /** Missing reference hash → its basename, and the narinfos that need it. */
  const missingRefs = new Map<number, { basename: string; referrers: number[] }>();
  const storePathOf = new Map<number, string>();
  for (let id = 0; id < n; id++) {
    if (!(g.flags[id]! & HAS_NARINFO)) continue;
    checked++;
    if (g.flags[id]! & UNREADABLE) continue;
    const nar = g.narId[id]!;
    if (nar >= 0 && g.narSize[nar]! < 0) brokenNar.set(id, 'missing-nar');
    else if (nar >= 0 && g.fileSize[id]! >= 0 && g.narSize[nar] !== g.fileSize[id])
      brokenNar.set(id, 'wrong-size-nar');
    for (const r of g.referencesOf(id)) {
      if (r === id || g.flags[r]! & HAS_NARINFO) continue;
      const entry = missingRefs.get(r) ?? { basename: '', referrers: [] };
      entry.referrers.push(id);
      missingRefs.set(r, entry);
    }
  }
  // The store paths of the narinfos concerned (the model keeps no strings), and each missing
  // reference's name from its first referrer: read 16 at a time (one after the other, a cache that
  // lost a reference thousands of paths share was as many round trips in a row).
  const infoOf = async (id: number): Promise<NarInfo | undefined> =>
    withRetry(() => store.getNarInfo(g.hashPartOf(id), sig), { signal });
  const concerned = new Set<number>(brokenNar.keys());
  const namedBy = new Map<number, number[]>(); // first referrer → the missing references it names
  for (const [r, entry] of missingRefs) {
    for (const id of entry.referrers) concerned.add(id);
    const first = entry.referrers[0]!;
    const named = namedBy.get(first);
    if (named) named.push(r);
    else namedBy.set(first, [r]);
  }
  await forEachBounded(concerned, { parallelism: options.parallelism ?? 16, ...sig }, async (id) => {
    const info = await infoOf(id);
    storePathOf.set(id, info?.storePath ?? g.hashPartOf(id));
    for (const r of namedBy.get(id) ?? []) {
      const hash = g.hashPartOf(r);
      missingRefs.get(r)!.basename = info?.references.find((b) => b.startsWith(hash)) ?? hash;
    }
  });
  /** Referrer → the store paths of its missing references (for the reports). */
  const missingOf = new Map<number, string[]>();
  for (const entry of missingRefs.values()) {
    for (const id of entry.referrers) {
      const list = missingOf.get(id);
      if (list) list.push(`${store.storeDir}/${entry.basename}`);
      else missingOf.set(id, [`${store.storeDir}/${entry.basename}`]);
    }
  }

  const sourceFor = async (info: NarInfo): Promise<NarSource | undefined> => {
    const sp = parseStorePath(info.storePath, store.storeDir);
    if (localDir !== undefined) {
      const physical = join(localDir, `${sp.hash}-${sp.name}`);
      if (
        await access(physical).then(
          () => true,
          () => false,
        )
      ) {
        // The hash is checked while staging; here only whether it is worth trying.
        return { from: localDir, nar: () => dumpPath(physical, sig) };
      }
    }
    for (const other of options.from ?? []) {
      const theirs = await withRetry(() => other.getNarInfo(info.storePath, sig), { signal }).catch(
        () => undefined,
      );
      if (theirs && hashEquals(theirs.narHash, info.narHash) && theirs.narSize === info.narSize) {
        return { from: other.location, nar: () => other.getNar(theirs, sig) };
      }
    }
    return undefined;
  };

  const doomed = new Set<number>();

  // 1. NARs missing or of the wrong size.
  for (const [id, problem] of brokenNar) {
    const path = storePathOf.get(id)!;
    const info = await infoOf(id);
    const source = info && (await sourceFor(info));
    if (!info || !source) {
      doomed.add(id);
      continue;
    }
    if (dryRun) {
      report({ problem, action: 'reuploaded', path, detail: source.from });
      continue;
    }
    try {
      const staged = await stageNar(source.nar(), {
        compression: store.config.compression,
        ...(store.config.compressionLevel !== undefined && {
          compressionLevel: store.config.compressionLevel,
        }),
        listing: store.config.writeNarListing,
        ...sig,
      });
      try {
        if (!hashEquals(staged.narHash, info.narHash) || staged.narSize !== info.narSize) {
          throw new NixcacheError(
            'INTEGRITY',
            `${path}: ${source.from} has other contents (NAR hash ${formatHash(staged.narHash)}, the narinfo says ${formatHash(info.narHash)})`,
            { path },
          );
        }
        const url = await uploadStagedNar(store, staged, parseStorePath(path, store.storeDir).hash, sig);
        const { original: _, ...fields } = info;
        await writeNarInfo(
          store,
          {
            ...fields,
            url,
            compression: store.config.compression,
            fileHash: staged.fileHash,
            fileSize: staged.fileSize,
          },
          signal,
        );
      } finally {
        await staged.dispose();
      }
      report({ problem, action: 'reuploaded', path, detail: source.from });
    } catch (e) {
      if (signal?.aborted) throw e;
      doomed.add(id);
    }
  }

  // 2. References without a narinfo: push or copy them (with their closures).
  for (const [r, entry] of missingRefs) {
    const full = `${store.storeDir}/${entry.basename}`;
    let fixedFrom: string | undefined;
    let valid = false;
    try {
      parseStorePathBasename(entry.basename, store.storeDir);
      valid = true;
    } catch {
      // A reference we cannot even name: its referrers go.
    }
    if (
      valid &&
      localDir !== undefined &&
      (await access(join(localDir, entry.basename)).then(
        () => true,
        () => false,
      ))
    ) {
      if (dryRun) fixedFrom = localDir;
      else {
        const res = await pushPaths(store, [full], {
          storeDir: localDir,
          secretKeys: options.secretKeys ?? [],
          ...sig,
        });
        if (res.failed.length === 0) fixedFrom = localDir;
      }
    }
    for (const other of valid && fixedFrom === undefined ? (options.from ?? []) : []) {
      if (!(await withRetry(() => other.hasNarInfo(full, sig), { signal }).catch(() => false))) continue;
      if (dryRun) {
        fixedFrom = other.location;
        break;
      }
      const res = await copyPaths(other, store, [full], sig);
      if (res.failed.length === 0) {
        fixedFrom = other.location;
        break;
      }
    }
    for (const id of entry.referrers) {
      if (fixedFrom !== undefined) {
        report({
          problem: 'missing-reference',
          action: 'reuploaded',
          path: storePathOf.get(id)!,
          detail: `${full} from ${fixedFrom}`,
        });
      } else doomed.add(id);
    }
    if (fixedFrom !== undefined) g.flags[r]! |= HAS_NARINFO;
  }

  // Unreadable narinfos cannot be substituted: they go too.
  for (let id = 0; id < n; id++) if (g.flags[id]! & UNREADABLE && g.flags[id]! & HAS_NARINFO) doomed.add(id);

  // 3. Everything whose closure includes a doomed narinfo: referrers of referrers, transitively.
  const referrersStart = new Int32Array(n + 1);
  for (let id = 0; id < n; id++) {
    if (!(g.flags[id]! & HAS_NARINFO)) continue;
    for (const r of g.referencesOf(id)) if (r !== id) referrersStart[r + 1]!++;
  }
  for (let i = 0; i < n; i++) referrersStart[i + 1]! += referrersStart[i]!;
  const referrers = new Int32Array(referrersStart[n]!);
  const fill = referrersStart.slice(0, n);
  for (let id = 0; id < n; id++) {
    if (!(g.flags[id]! & HAS_NARINFO)) continue;
    for (const r of g.referencesOf(id)) if (r !== id) referrers[fill[r]!++] = id;
  }
  const why = new Map<number, RepairProblem>();
  for (const id of doomed)
    why.set(id, brokenNar.get(id) ?? (g.flags[id]! & UNREADABLE ? 'unreadable' : 'missing-reference'));
  const queue = [...doomed];
  while (queue.length) {
    const id = queue.pop()!;
    for (let i = referrersStart[id]!; i < referrersStart[id + 1]!; i++) {
      const referrer = referrers[i]!;
      if (doomed.has(referrer)) continue;
      doomed.add(referrer);
      why.set(referrer, 'incomplete-closure');
      queue.push(referrer);
    }
  }

  for (const id of doomed)
    if (!storePathOf.has(id) && !(g.flags[id]! & UNREADABLE))
      storePathOf.set(id, (await infoOf(id).catch(() => undefined))?.storePath ?? g.hashPartOf(id));

  // Delete doomed narinfos referrers first (a doomed narinfo's referrers are all doomed), each
  // before its .ls.
  const indegree = new Map<number, number>();
  for (const id of doomed) indegree.set(id, 0);
  for (const id of doomed)
    for (const r of g.referencesOf(id)) if (r !== id && doomed.has(r)) indegree.set(r, indegree.get(r)! + 1);
  let level = [...doomed].filter((id) => indegree.get(id) === 0);
  const done = new Set<number>();
  while (level.length) {
    signal?.throwIfAborted();
    const keys = level.map((id) => narInfoKey(g.hashPartOf(id)));
    const refused = new Map<string, string>();
    if (!dryRun && keys.length) {
      const res = await withRetry(() => backend.deleteMany(keys, sig), { signal });
      for (const e of res.errors) refused.set(e.key, `${e.code}: ${e.message}`);
      const ls = level.filter((id) => g.flags[id]! & HAS_LS && !refused.has(narInfoKey(g.hashPartOf(id))));
      if (ls.length)
        await withRetry(
          () =>
            backend.deleteMany(
              ls.map((id) => listingKey(g.hashPartOf(id))),
              sig,
            ),
          { signal },
        );
    }
    for (const id of level) {
      done.add(id);
      const key = narInfoKey(g.hashPartOf(id));
      const problem = why.get(id)!;
      const path = storePathOf.get(id) ?? g.hashPartOf(id);
      const detail = problem === 'missing-reference' ? (missingOf.get(id) ?? []).join(' ') : refused.get(key);
      report({ problem, action: refused.has(key) ? 'failed' : 'deleted', path, ...(detail && { detail }) });
      if (!refused.has(key)) g.flags[id]! |= GONE;
    }
    const next: number[] = [];
    for (const id of level) {
      for (const r of g.referencesOf(id)) {
        if (r === id || !doomed.has(r) || done.has(r)) continue;
        const d = indegree.get(r)! - 1;
        indegree.set(r, d);
        if (d === 0) next.push(r);
      }
    }
    level = next;
  }

  // 4. Incomplete uploads older than the grace period.
  let pendingUploadsUnsupported = false;
  if (typeof backend.listPendingUploads === 'function' && typeof backend.abortPendingUpload === 'function') {
    const cutoff = (options.now ?? Date.now()) - (options.graceMs ?? DEFAULT_GRACE_MS);
    try {
      for await (const u of backend.listPendingUploads(sig)) {
        if (u.initiated > cutoff) continue;
        let action: RepairAction = 'aborted';
        if (!dryRun) {
          try {
            await withRetry(() => backend.abortPendingUpload!(u, sig), { signal });
          } catch (e) {
            if (signal?.aborted) throw e;
            action = 'failed';
          }
        }
        report({
          problem: 'stale-upload',
          action,
          key: u.key,
          detail: `upload ${u.uploadId} started ${new Date(u.initiated).toISOString()}`,
        });
      }
    } catch (e) {
      if (!(e instanceof NixcacheError && e.code === 'UNSUPPORTED')) throw e;
      pendingUploadsUnsupported = true;
    }
  } else pendingUploadsUnsupported = true;

  return { dryRun, reports, checked, pendingUploadsUnsupported };
}
