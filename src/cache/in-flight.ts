/**
 * Protecting pushes in flight from gc (nix-formats.md §7.2: a writer uploads a NAR, checks that
 * the narinfos of its references exist, then writes its narinfo). While the narinfo is not yet
 * written, gc cannot read the references from it; a push that found an old, unpinned reference
 * in the cache would then publish a narinfo whose reference gc has just deleted. So gc scans the
 * young NARs that no narinfo names (decompressed by their extension) for the hash parts of the
 * narinfos it is about to delete, as Nix's reference scanner finds references, and keeps those.
 */
import { decompress } from '../compression/compress.js';
import { ReferenceCandidates, scanReferences } from '../nar/references.js';
import type { ListedObject, StorageBackend } from '../store/backend.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { type CacheGraph, HAS_NARINFO, MARKED, narKeyDigest } from './cache-graph.js';
import { forEachBounded } from './pipeline.js';

const BY_EXTENSION: readonly (readonly [string, string])[] = [
  ['.nar.xz', 'xz'],
  ['.nar.zst', 'zstd'],
  ['.nar.bz2', 'bzip2'],
  ['.nar.br', 'br'],
  ['.nar', 'none'],
];

/** The compression a NAR key's extension names (`.nar` alone: none, or gzip, which we cannot tell). */
function compressionOfKey(key: string): string | undefined {
  return BY_EXTENSION.find(([ext]) => key.endsWith(ext))?.[1];
}

/**
 * Marks (with their closures) the unmarked narinfos that young, unnamed NARs refer to. Returns
 * how many NARs were scanned. NARs that cannot be read or decompressed are skipped: a push only
 * names a NAR it uploaded whole.
 *
 * @throws {NixcacheError} NETWORK/IO while listing, ABORTED.
 * @example await protectInFlight(graph, store, backend, Date.now() - graceMs)
 */
export async function protectInFlight(
  g: CacheGraph,
  store: BinaryCacheStore,
  backend: Required<Pick<StorageBackend, 'listObjects'>>,
  youngerThan: number,
  signal?: AbortSignal,
): Promise<number> {
  const sig = signal ? { signal } : {};
  const named = new Uint8Array(g.nars.size);
  for (let id = 0; id < g.paths.size; id++) {
    if (g.flags[id]! & HAS_NARINFO && g.narId[id]! >= 0) named[g.narId[id]!] = 1;
  }
  const young: ListedObject[] = [];
  for await (const o of backend.listObjects('nar/', { recursive: true, ...sig })) {
    if (o.lastModified <= youngerThan) continue;
    const id = g.nars.find(narKeyDigest(o.key));
    if (id >= 0 && id < named.length && named[id]) continue;
    young.push(o);
  }
  if (young.length === 0) return 0;
  const candidates: string[] = [];
  for (let id = 0; id < g.paths.size; id++) {
    if (g.flags[id]! & HAS_NARINFO && !(g.flags[id]! & MARKED)) candidates.push(g.hashPartOf(id));
  }
  if (candidates.length === 0) return 0;
  const compiled = new ReferenceCandidates(candidates);
  const found = new Set<string>();
  await forEachBounded(young, { parallelism: 2 }, async (o) => {
    const method = compressionOfKey(o.key);
    if (method === undefined) return;
    try {
      const body = await store.getFileStream(o.key, sig);
      if (!body) return;
      for (const h of await scanReferences(decompress(method, body, sig), compiled)) found.add(h);
    } catch (e) {
      if (signal?.aborted) throw e;
      // Not a whole NAR (a cut-short upload): no push will name it.
    }
  });
  g.mark([...found].map((h) => g.findPath(h)));
  return young.length;
}
