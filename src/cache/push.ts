/**
 * `pushPaths`: publishes store paths from a local store directory into a binary cache, the way
 * `nix copy --to` does (nix-formats.md §7.2): NAR and listing first, narinfo last, references
 * before referrers, paths the cache already has skipped. An interrupted push never leaves a
 * narinfo whose NAR or references are missing. References (from the metadata, or found by a
 * first scanning pass over each NAR) are all known before any NAR is uploaded, so a reference
 * cycle fails its paths without writing anything for them.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { warmUpCompressBytes } from '../compression/compress.js';
import { NixcacheError } from '../errors.js';
import { formatHash, hashEquals, type NixHash, parseHash } from '../hash/hash.js';
import { dumpPath } from '../nar/node/dump.js';
import { ReferenceCandidates } from '../nar/references.js';
import type { NarInfo } from '../narinfo/types.js';
import type { SecretKey } from '../signing/keys.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { storePathForContentAddress } from '../store-path/make.js';
import { formatStorePath, parseStorePathBasename, type StorePath } from '../store-path/store-path.js';
import { checkContentAddressHash, parseClaimedContentAddress } from './content-address.js';
import { basenameOf, type GraphResult, type InspectedPath, publishGraph } from './graph.js';
import { createLimit } from './limit.js';
import { signWith, uploadStagedNar } from './publish.js';
import { type ScannedNar, scanNar, stageNar } from './stage.js';
import type { Upstreams } from './upstream.js';

/** What the caller knows about a path (e.g. from `nix path-info --json`). */
export interface PathMetadata {
  /** Full store paths or basenames. When given, the NAR is not scanned. */
  readonly references?: readonly string[];
  /** Full path or basename of the deriver. */
  readonly deriver?: string;
  readonly ca?: string;
  /** Checked against the NAR nixcache computes. */
  readonly narHash?: string;
  readonly narSize?: number;
  /** Extra signatures to carry over. */
  readonly signatures?: readonly string[];
}

export type PushEvent =
  | { readonly type: 'start'; readonly path: string }
  | { readonly type: 'skip'; readonly path: string; readonly reason: string }
  | { readonly type: 'staged'; readonly path: string; readonly narSize: number; readonly fileSize: number }
  | { readonly type: 'bytes'; readonly path: string; readonly bytes: number }
  /** NAR bytes read from the store directory and staged (compressed) so far, as they stream. */
  | { readonly type: 'nar'; readonly path: string; readonly bytes: number }
  | { readonly type: 'done'; readonly path: string }
  | { readonly type: 'failed'; readonly path: string; readonly error: Error };

export interface PushOptions {
  /** The directory the paths are read from (default `/nix/store`); any directory laid out like a store. */
  readonly storeDir?: string;
  /** Signing keys (besides those named by the store URL's `secret-key(s)`, which the caller loads). */
  readonly secretKeys?: readonly SecretKey[];
  /** Push the closure of the paths (default true). */
  readonly closure?: boolean;
  /** Known metadata by full store path or basename. */
  readonly metadata?: ReadonlyMap<string, PathMetadata> | Readonly<Record<string, PathMetadata>>;
  /**
   * Paths staged (dumped, hashed, compressed) at once, and separately NARs uploaded at once
   * (default 2 each): a path staged while the slots upload waits for one with its NAR staged
   * (up to four such paths).
   */
  readonly parallelism?: number;
  /** Re-upload paths the cache already has. */
  readonly force?: boolean;
  /**
   * Caches Nix also substitutes from: a path one of them serves with a trusted signature is not
   * uploaded (its closure is still walked, and referrers still list it).
   */
  readonly upstreams?: Upstreams;
  readonly onProgress?: (event: PushEvent) => void;
  readonly signal?: AbortSignal;
}

/** Full store paths pushed (in narinfo write order), skipped (already cached) and failed. */
export type PushResult = GraphResult;

function metadataFor(options: PushOptions, sp: StorePath): PathMetadata | undefined {
  const m = options.metadata;
  if (!m) return undefined;
  const full = formatStorePath(sp);
  const base = `${sp.hash}-${sp.name}`;
  if (m instanceof Map) return m.get(full) ?? m.get(base);
  const rec = m as Readonly<Record<string, PathMetadata>>;
  return rec[full] ?? rec[base];
}

function metadataSize(m: PushOptions['metadata']): number {
  if (!m) return 0;
  return m instanceof Map ? m.size : Object.keys(m).length;
}

/** Scans the local store directory: hash part → basename. */
async function storeEntries(dir: string, logicalStoreDir: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  for (const name of await readdir(dir)) {
    try {
      const sp = parseStorePathBasename(name, logicalStoreDir);
      entries.set(sp.hash, name);
    } catch {
      // Not a store path (e.g. .links, lock files): not a reference candidate.
    }
  }
  return entries;
}

/**
 * The content address this path provably has, if any: a source path (`nix-store --add`), a text
 * file (`builtins.toFile`) or a flat sha256 fixed output (`nix-store --add-fixed sha256`). Each
 * candidate counts only when it recomputes to the path's own name.
 */
function detectContentAddress(
  sp: StorePath,
  narHash: NixHash,
  rootFileHash: NixHash | undefined,
  references: readonly string[],
): string | undefined {
  const own = `${sp.hash}-${sp.name}`;
  const others = references.filter((r) => r !== own).map((r) => `${sp.storeDir}/${r}`);
  const self = others.length !== references.length;
  const candidates = [`fixed:r:${formatHash(narHash)}`];
  if (rootFileHash) candidates.push(`text:${formatHash(rootFileHash)}`, `fixed:${formatHash(rootFileHash)}`);
  for (const ca of candidates) {
    try {
      if (
        storePathForContentAddress(sp.name, ca, others, { self, storeDir: sp.storeDir }) ===
        formatStorePath(sp)
      ) {
        return ca;
      }
    } catch (e) {
      // A claim that cannot hold (text with a self-reference, flat with references).
      if (!(e instanceof NixcacheError && e.code === 'BAD_CONTENT_ADDRESS')) throw e;
    }
  }
  return undefined;
}

/**
 * Staged NARs a push may hold while they wait for an upload slot: at most 1 MiB each in memory
 * (a larger one waits in a temporary file). Against s3rver, 600 small paths took 3-7% less time
 * with 4 than with none: the xz worker's idle gaps (about 1 ms per NAR, 0.7 s in all) came from
 * waiting for a staging slot that an upload held.
 */
const STAGED_AHEAD = 4;

/**
 * Pushes store paths (and by default their closures) to a binary cache.
 *
 * @throws {NixcacheError} only for problems before any work starts (bad path, unreadable store
 *   directory); per-path failures are in the result's `failed` list.
 * @example
 * const result = await pushPaths(store, ['/nix/store/…-hello'], { secretKeys: [key] });
 */
export async function pushPaths(
  store: BinaryCacheStore,
  paths: readonly string[],
  options: PushOptions = {},
): Promise<PushResult> {
  const physicalDir = options.storeDir ?? '/nix/store';
  const logical = store.storeDir;
  const signal = options.signal;
  const emit = options.onProgress ?? (() => {});
  // Bad paths fail here, before the store directory is read or the cache written.
  for (const p of paths) parseStorePathBasename(basenameOf(p), logical);
  // Small NARs are compressed in a worker thread: start it while the paths are looked up.
  void warmUpCompressBytes(store.config.compression);
  const entries = await storeEntries(physicalDir, logical);
  // Compiled once: every path without metadata is scanned against every entry of the store.
  const candidates = new ReferenceCandidates(entries.keys());
  const keys = options.secretKeys ?? [];
  // NARs too big to stage in memory spill into one directory for the whole push.
  let tempDir: Promise<string> | undefined;
  const sharedTempDir = () => {
    tempDir ??= mkdtemp(join(tmpdir(), 'nixcache-push-'));
    return tempDir;
  };
  // Staging is CPU (this thread and the compressor's); an upload mostly waits for the server.
  // With one slot for both, the compressor sat idle while every slot waited on an upload (half
  // of a 600-path push to s3rver): separate slots let the next NARs compress meanwhile. The
  // graph runs as many paths as both kinds of slot hold, plus STAGED_AHEAD staged NARs waiting
  // for an upload slot, so that the compressor still has work when the uploads are slow.
  const parallelism = Math.max(1, Math.floor(options.parallelism ?? 2));
  const stageSlot = createLimit(parallelism);
  const uploadSlot = createLimit(parallelism);

  /** Learns a path's references: from the metadata, or by scanning its NAR (nothing is written). */
  const inspect = async (sp: StorePath): Promise<InspectedPath<ScannedNar | undefined>> => {
    const meta = metadataFor(options, sp);
    if (meta?.references !== undefined)
      return { references: meta.references.map(basenameOf).sort(), data: undefined };
    const physical = join(physicalDir, `${sp.hash}-${sp.name}`);
    // scanNar is done with each chunk when it asks for the next (hashing and the scanner's own
    // copy of the last 31 bytes): the chunks can be reused, 7% less time on a 358 MB tree.
    const scanned = await scanNar(dumpPath(physical, { reuseChunks: true, ...(signal && { signal }) }), {
      candidates,
      ...(signal && { signal }),
    });
    return { references: [...scanned.references].map((h) => entries.get(h)!).sort(), data: scanned };
  };

  const publish = async (
    sp: StorePath,
    { references, data: scanned }: InspectedPath<ScannedNar | undefined>,
  ): Promise<NarInfo> => {
    const full = formatStorePath(sp);
    const physical = join(physicalDir, `${sp.hash}-${sp.name}`);
    const meta = metadataFor(options, sp);
    emit({ type: 'start', path: full });
    const claimed = meta?.ca === undefined ? undefined : parseClaimedContentAddress(full, meta.ca);
    const nar = counting(dumpPath(physical, { ...(signal && { signal }) }), (bytes) =>
      emit({ type: 'nar', path: full, bytes }),
    );
    const staged = await stageSlot(() =>
      stageNar(nar, {
        compression: store.config.compression,
        ...(store.config.compressionLevel !== undefined && {
          compressionLevel: store.config.compressionLevel,
        }),
        listing: store.config.writeNarListing,
        tempDir: sharedTempDir,
        ...(claimed && { contentAddress: claimed }),
        ...(signal && { signal }),
      }),
    );
    try {
      emit({ type: 'staged', path: full, narSize: staged.narSize, fileSize: staged.fileSize });
      // The references were scanned in an earlier pass: they hold only for the same NAR.
      if (scanned && !hashEquals(scanned.narHash, staged.narHash)) {
        throw new NixcacheError('INTEGRITY', `${full} changed while it was being pushed`, {
          path: full,
          expected: formatHash(scanned.narHash),
          actual: formatHash(staged.narHash),
        });
      }
      if (meta?.narHash !== undefined && !hashEquals(parseHash(meta.narHash), staged.narHash)) {
        throw new NixcacheError(
          'INTEGRITY',
          `${full}: NAR hash ${formatHash(staged.narHash)} differs from the given metadata ${meta.narHash}`,
          { path: full, expected: meta.narHash, actual: formatHash(staged.narHash) },
        );
      }
      // A CA claim from the metadata is published (and signed) only if the contents prove it.
      if (claimed) checkContentAddressHash(full, claimed, staged.contentAddressHash);
      const url = await uploadSlot(() =>
        uploadStagedNar(store, staged, sp.hash, {
          ...(signal && { signal }),
          onBytes: (bytes) => emit({ type: 'bytes', path: full, bytes }),
        }),
      );
      const ca = meta?.ca ?? detectContentAddress(sp, staged.narHash, staged.rootFileHash, references);
      const deriver = meta?.deriver === undefined ? undefined : basenameOf(meta.deriver);
      const info: NarInfo = {
        storePath: full,
        url,
        compression: store.config.compression,
        fileHash: staged.fileHash,
        fileSize: staged.fileSize,
        narHash: staged.narHash,
        narSize: staged.narSize,
        references,
        ...(deriver !== undefined && { deriver }),
        sigs: [...(meta?.signatures ?? [])],
        ...(ca !== undefined && { ca }),
      };
      return signWith(info, keys);
    } finally {
      await staged.dispose();
    }
  };

  const upstreams = options.upstreams?.unavailable === undefined ? options.upstreams : undefined;
  try {
    return await publishGraph(
      store,
      paths,
      { inspect, publish },
      {
        ...(options.closure !== undefined && { closure: options.closure }),
        parallelism: 2 * parallelism + STAGED_AHEAD,
        ...(options.force !== undefined && { force: options.force }),
        expectedPaths: Math.max(paths.length, metadataSize(options.metadata)),
        ...(signal && { signal }),
        ...(upstreams && {
          servedElsewhere: async (sp: StorePath) => {
            const hit = await upstreams.lookup(sp.hash);
            return hit && { references: hit.info.references };
          },
        }),
        onSkip: (path) => emit({ type: 'skip', path, reason: 'already in the cache' }),
        onServedElsewhere: (path) => emit({ type: 'skip', path, reason: 'served by an upstream cache' }),
        onDone: (path) => emit({ type: 'done', path }),
        onFailed: (path, error) => emit({ type: 'failed', path, error }),
      },
    );
  } finally {
    if (tempDir) await rm(await tempDir.catch(() => ''), { recursive: true, force: true }).catch(() => {});
  }
}

/** Passes chunks through, reporting each one's length. */
async function* counting(
  source: AsyncIterable<Uint8Array>,
  onBytes: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    onBytes(chunk.length);
    yield chunk;
  }
}
