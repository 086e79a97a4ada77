/**
 * The whole-cache model that gc and repair share (nix-formats.md §7.1): one listing pass over
 * the cache's objects (with sizes and last-modified times), then every narinfo read once for its
 * References, URL and FileSize. Paths and NARs live in compact digest tables with typed-array
 * columns, so memory grows by about 150 bytes + 4 bytes per reference per path, with no strings
 * kept (keys are derived again from the digests, or found by listing again).
 */
import { NixcacheError } from '../errors.js';
import { hashBytes } from '../hash/hasher.js';
import type { NarInfo } from '../narinfo/types.js';
import { decodeNix32, encodeNix32 } from '../nix32.js';
import type { ListedObject, StorageBackend } from '../store/backend.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { hashPartOfNarInfoKey, narUrlToKey } from '../store/layout.js';
import { isHashPart, parseStorePathBasename } from '../store-path/store-path.js';
import { DigestTable, grow } from './digest-table.js';
import { withRetry } from './retry.js';

/** Path flags. */
export const HAS_NARINFO = 1;
export const HAS_LS = 2;
export const MARKED = 4;
export const UNREADABLE = 8;
/** Deleted by this run. */
export const GONE = 16;
/** Seen (as a narinfo, listing or reference) while reading. */
export const READ = 32;

/** What kind of object a key is, for the sweep and the report. */
export type ObjectKind = 'narinfo' | 'ls' | 'nar' | 'other';

/**
 * The kind of a key in the binary cache layout.
 *
 * @example kindOfKey('nar/1abc.nar.xz') // 'nar'
 */
export function kindOfKey(key: string): ObjectKind {
  if (key.startsWith('nar/')) return 'nar';
  if (key.includes('/')) return 'other';
  if (hashPartOfNarInfoKey(key)) return 'narinfo';
  if (key.length === 35 && key.endsWith('.ls') && isHashPart(key.slice(0, 32))) return 'ls';
  return 'other';
}

/**
 * The table key of a NAR object key: the first 20 bytes of sha256(key).
 *
 * @example graph.nars.find(narKeyDigest('nar/1abc.nar.xz'))
 */
export function narKeyDigest(key: string): Uint8Array {
  return hashBytes('sha256', key).subarray(0, 20);
}

/**
 * The storage driver's housekeeping methods, or UNSUPPORTED naming the store (HTTP caches are
 * read-only for gc and repair).
 *
 * @throws {NixcacheError} UNSUPPORTED.
 * @example const backend = housekeeping(store, 'gc')
 */
export function housekeeping(
  store: BinaryCacheStore,
  operation: string,
): Required<Pick<StorageBackend, 'listObjects' | 'deleteMany'>> & StorageBackend {
  const b = store.backend;
  if (typeof b.listObjects !== 'function' || typeof b.deleteMany !== 'function') {
    throw new NixcacheError(
      'UNSUPPORTED',
      `${store.location}: ${operation} needs to list and delete objects, which this store type cannot do (use the s3:// or file:// URL of the cache)`,
      { url: store.location, operation },
    );
  }
  return b as Required<Pick<StorageBackend, 'listObjects' | 'deleteMany'>> & StorageBackend;
}

/**
 * The scanned cache: paths (by hash part) and NARs (by key), with their objects and edges.
 *
 * @example const g = await scanCache(store); g.mark([g.findPath(hashPart)])
 */
export class CacheGraph {
  readonly paths = new DigestTable(4096);
  readonly nars = new DigestTable(4096);
  flags = new Uint8Array(0);
  narinfoSize = new Float64Array(0);
  narinfoTime = new Float64Array(0);
  lsSize = new Float64Array(0);
  lsTime = new Float64Array(0);
  /** FileSize from the narinfo, -1 when it has none. */
  fileSize = new Float64Array(0);
  /** NAR id named by the narinfo, -1 when none (unread or unreadable). */
  narId = new Int32Array(0);
  refStart = new Int32Array(0);
  refCount = new Int32Array(0);
  refs = new Int32Array(0);
  refLength = 0;
  /** NAR objects: size and time when listed (-1 when not in the cache). */
  narSize = new Float64Array(0);
  narTime = new Float64Array(0);
  /** Objects outside the layout gc manages (nix-cache-info, pins/, log/, debuginfo/, …). */
  other = { objects: 0, bytes: 0 };

  /** The id of a hash part (adding it). */
  pathId(hashPart: string): number {
    const id = this.paths.intern(decodeNix32(hashPart, 20));
    if (id >= this.flags.length) this.#growPaths(id + 1);
    return id;
  }

  /** The id of a hash part, or -1. */
  findPath(hashPart: string): number {
    return this.paths.find(decodeNix32(hashPart, 20));
  }

  hashPartOf(id: number): string {
    return encodeNix32(this.paths.digestOf(id));
  }

  /** The id of a NAR key (adding it). */
  narIdOf(key: string): number {
    const id = this.nars.intern(narKeyDigest(key));
    if (id >= this.narSize.length) {
      const n = id + 1;
      this.narSize = grow(this.narSize, n, -1);
      this.narTime = grow(this.narTime, n, -1);
    }
    return id;
  }

  #growPaths(n: number): void {
    this.flags = grow(this.flags, n);
    this.narinfoSize = grow(this.narinfoSize, n);
    this.narinfoTime = grow(this.narinfoTime, n);
    this.lsSize = grow(this.lsSize, n);
    this.lsTime = grow(this.lsTime, n);
    this.fileSize = grow(this.fileSize, n, -1);
    this.narId = grow(this.narId, n, -1);
    this.refStart = grow(this.refStart, n);
    this.refCount = grow(this.refCount, n);
  }

  /** Records one listed object. */
  addListed(o: ListedObject): void {
    const kind = kindOfKey(o.key);
    if (kind === 'narinfo' || kind === 'ls') {
      const id = this.pathId(o.key.slice(0, 32));
      if (kind === 'narinfo') {
        this.flags[id]! |= HAS_NARINFO;
        this.narinfoSize[id] = o.size;
        this.narinfoTime[id] = o.lastModified;
      } else {
        this.flags[id]! |= HAS_LS;
        this.lsSize[id] = o.size;
        this.lsTime[id] = o.lastModified;
      }
    } else if (kind === 'nar') {
      const id = this.narIdOf(o.key);
      this.narSize[id] = o.size;
      this.narTime[id] = o.lastModified;
    } else {
      this.other.objects++;
      this.other.bytes += o.size;
    }
  }

  /** Records what a narinfo says (references, NAR, FileSize). */
  setNarInfo(id: number, info: NarInfo, storeDir: string): void {
    const ids: number[] = [];
    for (const r of info.references) ids.push(this.pathId(parseStorePathBasename(r, storeDir).hash));
    this.refs = grow(this.refs, this.refLength + ids.length);
    this.refStart[id] = this.refLength;
    this.refCount[id] = ids.length;
    for (const r of ids) this.refs[this.refLength++] = r;
    this.narId[id] = this.narIdOf(narUrlToKey(info.url, info.storePath).key);
    this.fileSize[id] = info.fileSize ?? -1;
    this.flags[id]! |= READ;
    this.flags[id]! &= ~UNREADABLE;
  }

  /** The reference ids of a path (including itself when it refers to itself). */
  referencesOf(id: number): Int32Array {
    return this.refs.subarray(this.refStart[id]!, this.refStart[id]! + this.refCount[id]!);
  }

  /** Marks the closures of `roots`; returns how many paths were newly marked. */
  mark(roots: Iterable<number>): number {
    let stack = new Int32Array(64);
    let top = 0;
    let marked = 0;
    const push = (id: number) => {
      if (this.flags[id]! & MARKED) return;
      this.flags[id]! |= MARKED;
      marked++;
      stack = grow(stack, top + 1);
      stack[top++] = id;
    };
    for (const r of roots) push(r);
    while (top > 0) {
      const id = stack[--top]!;
      const start = this.refStart[id]!;
      const end = start + this.refCount[id]!;
      for (let i = start; i < end; i++) push(this.refs[i]!);
    }
    return marked;
  }

  /** Approximate bytes held by the model. */
  get byteLength(): number {
    const columns = [
      this.flags,
      this.narinfoSize,
      this.narinfoTime,
      this.lsSize,
      this.lsTime,
      this.fileSize,
      this.narId,
      this.refStart,
      this.refCount,
      this.refs,
      this.narSize,
      this.narTime,
    ];
    return this.paths.byteLength + this.nars.byteLength + columns.reduce((n, c) => n + c.byteLength, 0);
  }
}

/**
 * Runs `fn` over `items` with at most `n` at once, pulling lazily (no promise per item up front).
 *
 * @throws the first error `fn` threw, after the running calls settle.
 * @example await forEachLimited(store.listNarInfos(), 16, async (h) => { … })
 */
export async function forEachLimited<T>(
  items: Iterable<T> | AsyncIterable<T>,
  n: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const it =
    Symbol.asyncIterator in (items as object)
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let failed: unknown;
  let done = false;
  const worker = async () => {
    while (!done && failed === undefined) {
      const next = await it.next();
      if (next.done) {
        done = true;
        return;
      }
      try {
        await fn(next.value);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, n) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * Reads one narinfo into the graph. A narinfo that vanished since the listing loses HAS_NARINFO;
 * one that does not parse (or names another path) is flagged UNREADABLE.
 *
 * @throws {NixcacheError} NETWORK/IO after retries, ABORTED.
 * @example await readNarInfoInto(graph, store, graph.pathId(hashPart))
 */
export async function readNarInfoInto(
  graph: CacheGraph,
  store: BinaryCacheStore,
  id: number,
  signal?: AbortSignal,
): Promise<NarInfo | undefined> {
  let info: NarInfo | undefined;
  try {
    info = await withRetry(() => store.getNarInfo(graph.hashPartOf(id), { ...(signal && { signal }) }), {
      signal,
    });
  } catch (e) {
    if (
      e instanceof NixcacheError &&
      ['BAD_NARINFO', 'INTEGRITY', 'BAD_STORE_PATH', 'BAD_HASH'].includes(e.code)
    ) {
      graph.flags[id]! |= UNREADABLE | READ;
      return undefined;
    }
    throw e;
  }
  if (!info) {
    graph.flags[id]! &= ~HAS_NARINFO;
    return undefined;
  }
  graph.setNarInfo(id, info, store.storeDir);
  return info;
}

export interface ScanOptions {
  /** Narinfos read at once (default 16). */
  readonly parallelism?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: { phase: 'list' | 'read'; done: number }) => void;
}

/**
 * Lists every object of the cache and reads every narinfo.
 *
 * @throws {NixcacheError} UNSUPPORTED for stores that cannot list with metadata (HTTP);
 *   NETWORK/IO, ABORTED.
 * @example const graph = await scanCache(store)
 */
export async function scanCache(store: BinaryCacheStore, options: ScanOptions = {}): Promise<CacheGraph> {
  const backend = housekeeping(store, 'scanning the cache');
  const signal = options.signal;
  const graph = new CacheGraph();
  let listed = 0;
  for await (const o of backend.listObjects('', { recursive: true, ...(signal && { signal }) })) {
    graph.addListed(o);
    if (++listed % 10_000 === 0) options.onProgress?.({ phase: 'list', done: listed });
  }
  const narinfos = graph.paths.size;
  let read = 0;
  function* ids() {
    for (let id = 0; id < narinfos; id++) if (graph.flags[id]! & HAS_NARINFO) yield id;
  }
  await forEachLimited(ids(), options.parallelism ?? 16, async (id) => {
    await readNarInfoInto(graph, store, id, signal);
    if (++read % 10_000 === 0) options.onProgress?.({ phase: 'read', done: read });
  });
  return graph;
}
