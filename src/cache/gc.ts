/**
 * `collectGarbage`: a garbage collector for a binary cache on a plain bucket or directory, with
 * nothing beside it (nix-formats.md §7.1-§7.2). It keeps the closures (References, transitively,
 * as the cache records them) of every kept revision of every pin (`pins.ts`), of explicit roots,
 * and of every narinfo uploaded within `keepDays`, and deletes everything else in an order that
 * never breaks a kept closure, so the cache invariant "no narinfo lacks its NAR or a reference"
 * holds at every instant, even when gc is killed:
 *
 * 1. scan: list every object (size, last-modified) and read every narinfo (`cache-graph.ts`);
 * 2. mark: the closures of the roots; every narinfo younger than the grace period is a root too
 *    (a push writes narinfos last, and its references may be old); then list the narinfos and pins
 *    again and mark whatever appeared since the scan, and scan the young NARs no narinfo names
 *    (pushes in flight) for references to unmarked narinfos (`in-flight.ts`);
 * 3. sweep: unmarked narinfos referrers first (Kahn levels over the unmarked set's reference
 *    graph: when X is unmarked so is every narinfo that refers to X), each narinfo before its
 *    `.ls`; then NARs that no remaining narinfo names and are older than the grace period; then
 *    orphan `.ls` files. Each batch (DeleteObjects, ≤ 1000 keys) is re-checked with HEAD just
 *    before it goes: an object rewritten since the listing, or younger than the grace period, stays
 *    (and a kept narinfo keeps its closure).
 *
 * Memory: the scan model (`CacheGraph`) costs about 150 bytes per path plus 4 bytes per reference;
 * no key strings are held (NAR keys are found again by listing `nar/`).
 */
import { NixcacheError } from '../errors.js';
import type { ListedObject, ObjectInfo } from '../store/backend.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { listingKey, narInfoKey } from '../store/layout.js';
import { parseStorePath } from '../store-path/store-path.js';
import {
  type CacheGraph,
  forEachLimited,
  GONE,
  HAS_LS,
  HAS_NARINFO,
  housekeeping,
  kindOfKey,
  MARKED,
  narKeyDigest,
  readNarInfoInto,
  scanCache,
} from './cache-graph.js';
import { protectInFlight } from './in-flight.js';
import { listPins, type Pin } from './pins.js';
import { withRetry } from './retry.js';

export const DAY_MS = 86_400_000;
/** Objects younger than this are never deleted by default: one day. */
export const DEFAULT_GRACE_MS = DAY_MS;

/** Flags local to the sweep. */
const CANDIDATE = 64;
const LS_GONE = 128;

/** Kinds of objects gc deletes. */
export type GcKind = 'narinfo' | 'ls' | 'nar';

/** One object gc deleted (or, in a dry run, would delete). */
export interface GcObject {
  readonly key: string;
  readonly kind: GcKind;
  readonly size: number;
}

export interface KindTotals {
  readonly objects: number;
  readonly bytes: number;
}

export type GcEvent =
  | { readonly type: 'phase'; readonly phase: 'scan' | 'mark' | 'sweep' | 'done' }
  | { readonly type: 'batch'; readonly kind: GcKind; readonly objects: number; readonly dryRun: boolean }
  | { readonly type: 'skip'; readonly key: string; readonly reason: string };

export interface GcOptions {
  /** Narinfos uploaded within this many days are roots (fractions allowed; default none). */
  readonly keepDays?: number;
  /** Extra roots: full store paths (or hash parts, or basenames). */
  readonly roots?: readonly string[];
  /** Never delete an object younger than this (ms, default one day). */
  readonly graceMs?: number;
  /** Report what would go; change nothing. */
  readonly dryRun?: boolean;
  /** Keys per delete request (default 1000, the S3 maximum). */
  readonly batchSize?: number;
  /** Narinfos read and objects re-checked at once (default 16). */
  readonly parallelism?: number;
  /** The clock (ms since the epoch; default Date.now()). */
  readonly now?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: GcEvent) => void;
  /** Called with each batch of objects deleted (or that would be, in a dry run), in order. */
  readonly onDelete?: (objects: readonly GcObject[]) => void;
}

export interface GcResult {
  readonly dryRun: boolean;
  readonly deleted: Readonly<Record<GcKind, KindTotals>>;
  readonly kept: Readonly<Record<GcKind | 'other', KindTotals>>;
  readonly roots: {
    readonly pins: number;
    readonly pinRevisions: number;
    readonly explicit: number;
    /** Narinfos kept for their age (within keepDays or the grace period). */
    readonly recent: number;
  };
  /** Paths in the kept closures. */
  readonly marked: number;
  /** Roots (from pins or explicit) with no narinfo in the cache. */
  readonly missingRoots: readonly string[];
  /** Objects left in place at the last moment, and why (rewritten, young, refused). */
  readonly skipped: readonly { readonly key: string; readonly reason: string }[];
  readonly timings: { readonly scanMs: number; readonly markMs: number; readonly sweepMs: number };
  /** Bytes held by the scan model, and paths and NARs in it. */
  readonly memory: { readonly modelBytes: number; readonly paths: number; readonly nars: number };
}

function rootHashPart(root: string, storeDir: string): string {
  if (root.startsWith('/')) return parseStorePath(root, storeDir).hash;
  return root.slice(0, 32);
}

/** Same object as listed: same size, not rewritten since (S3 times have whole seconds). */
function unchanged(now: ObjectInfo, listedSize: number, listedTime: number): boolean {
  if (now.size !== undefined && now.size !== listedSize) return false;
  return now.lastModified === undefined || now.lastModified < listedTime + 1000;
}

/**
 * Collects the garbage of a binary cache: see the module comment for what is kept and the order
 * of deletion.
 *
 * @throws {NixcacheError} UNSUPPORTED for stores that cannot list and delete (HTTP);
 *   BAD_ARGUMENT for bad options or a malformed pin; NETWORK/IO, ABORTED. A run that fails or is
 *   killed leaves a consistent cache; the next run finishes the job.
 * @example
 * const r = await collectGarbage(store, { keepDays: 30, roots: ['/nix/store/…-system'] });
 * console.log(r.deleted.nar.bytes)
 */
export async function collectGarbage(store: BinaryCacheStore, options: GcOptions = {}): Promise<GcResult> {
  const backend = housekeeping(store, 'gc');
  const signal = options.signal;
  const sig = signal ? { signal } : {};
  const now = options.now ?? Date.now();
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const dryRun = options.dryRun ?? false;
  const batchSize = Math.max(1, Math.min(options.batchSize ?? 1000, 1000));
  const parallelism = options.parallelism ?? 16;
  for (const [name, v] of [
    ['graceMs', graceMs],
    ['keepDays', options.keepDays ?? 0],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) {
      throw new NixcacheError('BAD_ARGUMENT', `gc: ${name} must be a number >= 0, got ${v}`, { field: name });
    }
  }
  const graceCutoff = now - graceMs;
  const recentCutoff =
    options.keepDays === undefined ? graceCutoff : Math.min(graceCutoff, now - options.keepDays * DAY_MS);
  const emit = options.onProgress ?? (() => {});
  const skipped: { key: string; reason: string }[] = [];
  const skip = (key: string, reason: string) => {
    skipped.push({ key, reason });
    emit({ type: 'skip', key, reason });
  };

  // 1. Scan.
  const t0 = performance.now();
  emit({ type: 'phase', phase: 'scan' });
  const g = await scanCache(store, { parallelism, ...sig });
  const t1 = performance.now();

  // 2. Mark.
  emit({ type: 'phase', phase: 'mark' });
  const missingRoots = new Set<string>();
  let pinCount = 0;
  let pinRevisions = 0;
  let recent = 0;
  const rootIds: number[] = [];
  const addRoot = (root: string) => {
    const hash = rootHashPart(root, store.storeDir);
    const id = g.findPath(hash);
    if (id < 0 || !(g.flags[id]! & HAS_NARINFO)) missingRoots.add(root);
    else rootIds.push(id);
  };
  const seenRevisions = new Set<string>();
  const addPins = (pins: readonly Pin[]) => {
    for (const pin of pins) {
      for (const rev of pin.revisions) {
        const tag = `${pin.name}\n${rev.time}\n${rev.paths.join('\n')}`;
        if (seenRevisions.has(tag)) continue;
        seenRevisions.add(tag);
        pinRevisions++;
        for (const p of rev.paths) addRoot(p);
      }
    }
  };
  const pins = await listPins(store, sig);
  pinCount = pins.length;
  addPins(pins);
  for (const r of options.roots ?? []) addRoot(r);
  const explicit = options.roots?.length ?? 0;
  const ids = g.paths.size;
  for (let id = 0; id < ids; id++) {
    if (g.flags[id]! & HAS_NARINFO && g.narinfoTime[id]! > recentCutoff) {
      rootIds.push(id);
      recent++;
    }
  }
  g.mark(rootIds);
  // What appeared since the scan: narinfos written (or rewritten) by pushes running now are
  // roots, and so are pins made meanwhile.
  rootIds.length = 0;
  /** Reads the narinfos written (or rewritten) since the scan into the model; returns their ids. */
  const refresh = async (): Promise<number[]> => {
    const fresh: number[] = [];
    for await (const o of backend.listObjects('', { recursive: false, ...sig })) {
      if (kindOfKey(o.key) !== 'narinfo') continue;
      const id = g.findPath(o.key.slice(0, 32));
      if (id >= 0 && g.flags[id]! & HAS_NARINFO && g.narinfoTime[id] === o.lastModified) continue;
      g.addListed(o);
      const now = g.findPath(o.key.slice(0, 32));
      g.flags[now]! &= ~GONE; // written again after this run deleted it
      fresh.push(now);
    }
    await forEachLimited(fresh, parallelism, async (id) => {
      await readNarInfoInto(g, store, id, signal);
    });
    return fresh;
  };
  for (const id of await refresh()) {
    rootIds.push(id);
    recent++;
  }
  // Pushes in flight: young NARs no narinfo names yet keep what they refer to.
  g.mark(rootIds);
  rootIds.length = 0;
  await protectInFlight(g, store, backend, graceCutoff, signal);
  const pinsAgain = await listPins(store, sig);
  pinCount = Math.max(pinCount, pinsAgain.length);
  addPins(pinsAgain);
  g.mark(rootIds);
  let marked = 0;
  for (let id = 0; id < g.paths.size; id++) if (g.flags[id]! & MARKED) marked++;
  const t2 = performance.now();

  // 3. Sweep.
  emit({ type: 'phase', phase: 'sweep' });
  const deleted = {
    narinfo: { objects: 0, bytes: 0 },
    ls: { objects: 0, bytes: 0 },
    nar: { objects: 0, bytes: 0 },
  };

  /**
   * Re-checks and deletes one batch; returns the keys deleted. `listed` gives each key's size and
   * time as the scan saw them.
   */
  const deleteBatch = async (
    kind: GcKind,
    batch: readonly ListedObject[],
    hooks: { kept?(keys: readonly string[]): void; wanted?(key: string): boolean } = {},
  ): Promise<Set<string>> => {
    const gone = new Set<string>();
    if (batch.length === 0) return gone;
    let ready: ListedObject[];
    if (dryRun) ready = [...batch];
    else {
      const checked: (ListedObject | undefined)[] = new Array(batch.length);
      const kept: string[] = [];
      await forEachLimited(batch.keys(), parallelism, async (i) => {
        const o = batch[i]!;
        const info = await withRetry(() => backend.head(o.key, sig), { signal });
        if (!info) return void kept.push(o.key); // someone else removed it
        if (!unchanged(info, o.size, o.lastModified)) {
          kept.push(o.key);
          return skip(o.key, 'rewritten since it was listed');
        }
        if ((info.lastModified ?? o.lastModified) > graceCutoff) {
          kept.push(o.key);
          return skip(o.key, 'younger than the grace period');
        }
        checked[i] = { key: o.key, size: info.size ?? o.size, lastModified: o.lastModified };
      });
      if (kept.length) hooks.kept?.(kept);
      ready = checked.filter((o): o is ListedObject => o !== undefined && (hooks.wanted?.(o.key) ?? true));
    }
    if (ready.length === 0) return gone;
    let refused = new Map<string, string>();
    if (!dryRun) {
      const res = await withRetry(
        () =>
          backend.deleteMany(
            ready.map((o) => o.key),
            sig,
          ),
        { signal },
      );
      refused = new Map(res.errors.map((e) => [e.key, `${e.code}: ${e.message}`]));
    }
    const done: GcObject[] = [];
    for (const o of ready) {
      const why = refused.get(o.key);
      if (why !== undefined) {
        skip(o.key, `the server refused to delete it (${why})`);
        continue;
      }
      gone.add(o.key);
      deleted[kind].objects++;
      deleted[kind].bytes += o.size;
      done.push({ key: o.key, kind, size: o.size });
    }
    if (done.length) options.onDelete?.(done);
    emit({ type: 'batch', kind, objects: done.length, dryRun });
    return gone;
  };

  // 3a. Unmarked narinfos, referrers first (a topological order of the unmarked set's reference
  // graph: when X is unmarked so is every narinfo that refers to X), in batches; each batch's
  // listings right after it. After each whole batch no remaining narinfo refers to a deleted one;
  // file:// deletes a batch in order too, and a DeleteObjects request cannot be cut by a kill.
  const n = g.paths.size;
  const indegree = new Int32Array(n);
  let candidates = 0;
  for (let id = 0; id < n; id++) {
    if (g.flags[id]! & HAS_NARINFO && !(g.flags[id]! & MARKED)) {
      g.flags[id]! |= CANDIDATE;
      candidates++;
    }
  }
  for (let id = 0; id < n; id++) {
    if (!(g.flags[id]! & CANDIDATE)) continue;
    for (const r of g.referencesOf(id)) if (r !== id && g.flags[r]! & CANDIDATE) indegree[r]!++;
  }
  const order = new Int32Array(candidates);
  let head = 0;
  let tail = 0;
  for (let id = 0; id < n; id++) if (g.flags[id]! & CANDIDATE && indegree[id] === 0) order[tail++] = id;
  while (head < tail) {
    const id = order[head++]!;
    for (const r of g.referencesOf(id)) {
      if (r !== id && g.flags[r]! & CANDIDATE && --indegree[r]! === 0) order[tail++] = r;
    }
  }
  // Only a reference cycle (impossible in a Nix store) leaves anything: it goes last.
  for (let id = 0; tail < candidates && id < n; id++)
    if (g.flags[id]! & CANDIDATE && indegree[id]! > 0) order[tail++] = id;
  const idOfNarInfoKey = (key: string) => g.findPath(key.slice(0, 32));
  for (let at = 0; at < candidates; at += batchSize) {
    signal?.throwIfAborted();
    const chunk = [...order.subarray(at, at + batchSize)].filter((id) => !(g.flags[id]! & MARKED));
    const batch = chunk.map((id) => ({
      key: narInfoKey(g.hashPartOf(id)),
      size: g.narinfoSize[id]!,
      lastModified: g.narinfoTime[id]!,
    }));
    const gone = await deleteBatch('narinfo', batch, {
      // A narinfo that stays keeps its closure, even the part of it in this batch.
      kept: (keys) => g.mark(keys.map(idOfNarInfoKey)),
      wanted: (key) => !(g.flags[idOfNarInfoKey(key)]! & MARKED),
    });
    const refused: number[] = [];
    const lsBatch: ListedObject[] = [];
    for (const id of chunk) {
      if (!gone.has(narInfoKey(g.hashPartOf(id)))) {
        if (!(g.flags[id]! & MARKED)) refused.push(id);
        continue;
      }
      g.flags[id]! |= GONE;
      if (g.flags[id]! & HAS_LS)
        lsBatch.push({ key: listingKey(g.hashPartOf(id)), size: g.lsSize[id]!, lastModified: g.lsTime[id]! });
    }
    g.mark(refused);
    const lsGone = await deleteBatch('ls', lsBatch);
    for (const key of lsGone) g.flags[idOfNarInfoKey(key)]! |= LS_GONE;
  }

  // 3b. NARs no remaining narinfo names (and never-named ones), older than the grace period. A
  // push running now may have found an old NAR already there and named it in a new narinfo:
  // list the narinfos once more so such a NAR counts as named.
  if (!dryRun) g.mark(await refresh());
  const named = new Int32Array(g.nars.size);
  for (let id = 0; id < g.paths.size; id++) {
    if (g.flags[id]! & HAS_NARINFO && !(g.flags[id]! & GONE) && g.narId[id]! >= 0) named[g.narId[id]!]!++;
  }
  let pending: ListedObject[] = [];
  const flushNars = async () => {
    const gone = await deleteBatch('nar', pending);
    for (const key of gone) g.narSize[g.nars.find(narKeyDigest(key))] = -1;
    pending = [];
  };
  for await (const o of backend.listObjects('nar/', { recursive: true, ...sig })) {
    const id = g.nars.find(narKeyDigest(o.key));
    if (id < 0) {
      g.addListed(o); // written since the scan
      continue;
    }
    if ((id < named.length && named[id]! > 0) || o.lastModified > graceCutoff) continue;
    pending.push(o);
    if (pending.length >= batchSize) await flushNars();
  }
  await flushNars();

  // 3c. Listings without a narinfo.
  let lsPending: ListedObject[] = [];
  const flushLs = async () => {
    const gone = await deleteBatch('ls', lsPending);
    for (const key of gone) g.flags[g.findPath(key.slice(0, 32))]! |= LS_GONE;
    lsPending = [];
  };
  for (let id = 0; id < g.paths.size; id++) {
    const f = g.flags[id]!;
    if (!(f & HAS_LS) || f & LS_GONE || (f & HAS_NARINFO && !(f & GONE)) || g.lsTime[id]! > graceCutoff)
      continue;
    if (f & GONE) continue; // its narinfo went but the listing could not: it is retried next time
    lsPending.push({ key: listingKey(g.hashPartOf(id)), size: g.lsSize[id]!, lastModified: g.lsTime[id]! });
    if (lsPending.length >= batchSize) await flushLs();
  }
  await flushLs();
  const t3 = performance.now();
  emit({ type: 'phase', phase: 'done' });

  return {
    dryRun,
    deleted,
    kept: keptTotals(g),
    roots: { pins: pinCount, pinRevisions, explicit, recent },
    marked,
    missingRoots: [...missingRoots],
    skipped,
    timings: { scanMs: Math.round(t1 - t0), markMs: Math.round(t2 - t1), sweepMs: Math.round(t3 - t2) },
    memory: { modelBytes: g.byteLength, paths: g.paths.size, nars: g.nars.size },
  };
}

/** What the model says is left, by kind. */
function keptTotals(g: CacheGraph): Record<GcKind | 'other', KindTotals> {
  const kept = {
    narinfo: { objects: 0, bytes: 0 },
    ls: { objects: 0, bytes: 0 },
    nar: { objects: 0, bytes: 0 },
    other: { ...g.other },
  };
  for (let id = 0; id < g.paths.size; id++) {
    const f = g.flags[id]!;
    if (f & HAS_NARINFO && !(f & GONE)) {
      kept.narinfo.objects++;
      kept.narinfo.bytes += g.narinfoSize[id]!;
    }
    if (f & HAS_LS && !(f & LS_GONE)) {
      kept.ls.objects++;
      kept.ls.bytes += g.lsSize[id]!;
    }
  }
  for (let id = 0; id < g.nars.size; id++) {
    if (g.narSize[id]! >= 0) {
      kept.nar.objects++;
      kept.nar.bytes += g.narSize[id]!;
    }
  }
  return kept;
}
