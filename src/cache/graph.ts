/**
 * The order of publishing a set of paths into a cache, shared by push and copy (nix-formats.md
 * §7.2), in three phases so that nothing is written for a path that cannot be published:
 *
 * 1. discover: each path is inspected (its references learnt, nothing written) and, with
 *    `closure`, so is everything it refers to; paths the cache already has are skipped, and so
 *    is their closure (the cache's invariant covers it);
 * 2. check: a reference cycle (impossible in a real store: only a path's reference to itself
 *    is legal) fails every path on it, and a failed path fails everything that refers to it;
 * 3. publish: nix-cache-info is written if the cache lacks it, then the rest is staged and
 *    uploaded with bounded parallelism, and each narinfo is written only once the narinfos of
 *    all its references are in the cache.
 *
 * Graphs of one run that go on at the same time (`copyAll`: one per listed path) share a
 * {@link SharedRun}: a path one of them is publishing is claimed, and another that finds it
 * missing waits for that claim instead of publishing it a second time.
 */
import { NixcacheError } from '../errors.js';
import { turn, turnDue } from '../internal/turn.js';
import type { NarInfo } from '../narinfo/types.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { formatStorePath, parseStorePathBasename, type StorePath } from '../store-path/store-path.js';
import { ensureCacheInfo, readCacheInfo } from './init.js';
import { createLimit } from './limit.js';
import { writeNarInfo } from './publish.js';
import { withRetry } from './retry.js';
import { type Claim, claim, PUBLISHED, type SharedRun } from './shared-run.js';

/** What inspecting a path found out, before anything was written. */
export interface InspectedPath<T> {
  /** Basenames, including the path itself when it refers to itself. */
  readonly references: readonly string[];
  /** Whatever the publish step needs again (e.g. the source narinfo). */
  readonly data: T;
}

/** The two steps of publishing one path. */
export interface GraphSteps<T> {
  /** Learns the path's references; must not write to the cache. */
  inspect(sp: StorePath): Promise<InspectedPath<T>>;
  /** Stages and uploads the path's NAR and returns its narinfo (written later, after its references). */
  publish(sp: StorePath, inspected: InspectedPath<T>): Promise<NarInfo>;
}

export interface GraphOptions {
  /** Follow references (default true); otherwise each must already be in the cache or be one of the roots. */
  readonly closure?: boolean;
  readonly parallelism?: number;
  /** Publish even what the cache already has. */
  readonly force?: boolean;
  /**
   * About how many paths will be checked against the cache (e.g. the size of a closure known
   * from metadata; default the number of roots). From {@link LIST_FROM} on, one listing of the
   * cache's narinfos replaces a HEAD per path when the listing is short enough.
   */
  readonly expectedPaths?: number;
  readonly signal?: AbortSignal;
  /**
   * Where a path is served elsewhere (an upstream cache Nix also substitutes from): such a path is
   * not published, but with `closure` its references (as given here) are still walked, and
   * referrers may list it. Asked only for paths the cache does not have.
   */
  readonly servedElsewhere?: (
    sp: StorePath,
  ) => Promise<{ readonly references: readonly string[] } | undefined>;
  readonly onSkip?: (path: string) => void;
  /** A path was found served elsewhere (not published). */
  readonly onServedElsewhere?: (path: string) => void;
  readonly onDone?: (path: string) => void;
  readonly onFailed?: (path: string, error: Error) => void;
  /** Shared with the other graphs of the same run that go on at the same time. */
  readonly shared?: SharedRun;
}

export interface GraphResult {
  /** In the order their narinfos were written. */
  readonly pushed: readonly string[];
  readonly skipped: readonly string[];
  /** Not published because `servedElsewhere` serves them. */
  readonly servedElsewhere: readonly string[];
  readonly failed: readonly { readonly path: string; readonly error: Error }[];
}

/** The last component of a store path (`/nix/store/<hash>-<name>/` → `<hash>-<name>`); basenames pass through. */
export function basenameOf(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

interface Node<T> {
  readonly sp: StorePath;
  readonly basename: string;
  readonly full: string;
  /** shared: another graph of the run is publishing it (`task` is its claim). */
  state: 'pending' | 'skipped' | 'elsewhere' | 'shared' | 'ready' | 'failed';
  inspected?: InspectedPath<T>;
  /** This graph's claim on the path, with a shared run. */
  claim?: Claim;
  /** Other nodes this one refers to (not itself). */
  refs: Node<T>[];
  /** Resolves once the narinfo is written; rejects when the path failed. */
  task?: Promise<void>;
}

/**
 * Publishes `roots` (full store paths or basenames) and, with `closure`, everything they refer to.
 *
 * @throws {NixcacheError} BAD_STORE_PATH for a malformed root; per-path failures (a missing
 *   reference, a reference cycle, an upload error) are in the result's `failed` list.
 */
export async function publishGraph<T>(
  store: BinaryCacheStore,
  roots: readonly string[],
  steps: GraphSteps<T>,
  options: GraphOptions = {},
): Promise<GraphResult> {
  const signal = options.signal;
  const closure = options.closure ?? true;
  const limit = createLimit(options.parallelism ?? 2);
  const pushed: string[] = [];
  const skipped: string[] = [];
  const elsewhere: string[] = [];
  const failed: { path: string; error: Error }[] = [];
  const storeDir = store.storeDir;
  const nodes = new Map<string, Node<T>>();
  const order: Node<T>[] = [];

  const shared = options.shared;
  // A cache for another store directory fails everything at once, before any work.
  const read = () => readCacheInfo(store, signal);
  const cacheInfo = await (shared ? shared.cacheInfo(read) : read());
  const expected = options.expectedPaths ?? roots.length;
  const listed =
    options.force || expected < LIST_FROM
      ? undefined
      : await listNarInfoHashes(store, expected * 100, signal);
  const inCache = async (hash: string) =>
    listed ? listed.has(hash) : withRetry(() => store.hasNarInfo(hash, { signal }), { signal });
  const fail = (node: Node<T>, error: Error) => {
    node.claim?.settle(error);
    if (node.state === 'failed') return;
    node.state = 'failed';
    failed.push({ path: node.full, error });
    options.onFailed?.(node.full, error);
  };

  // Phase 1: discover.
  const discoveries: Promise<void>[] = [];
  /**
   * Another graph of the run publishes the path, or the run knows it is in the cache: the node
   * waits for that (state 'shared') and true is returned.
   */
  const joinShared = (node: Node<T>): boolean => {
    const task =
      shared?.claims.get(node.sp.hash) ?? (shared?.recent.has(node.sp.hash) ? PUBLISHED : undefined);
    if (!task) return false;
    node.state = 'shared';
    node.task = task;
    return true;
  };
  const discover = async (node: Node<T>): Promise<void> => {
    // What the run already knows needs no question to the cache (closures overlap: without this,
    // a copy --all asked about each shared reference once per listed path that has it).
    if (joinShared(node)) return;
    if (!options.force && (await inCache(node.sp.hash))) {
      node.state = 'skipped';
      skipped.push(node.full);
      options.onSkip?.(node.full);
      shared?.published(node.sp.hash, node.full);
      return;
    }
    const served = await options.servedElsewhere?.(node.sp);
    if (served) {
      node.state = 'elsewhere';
      elsewhere.push(node.full);
      options.onServedElsewhere?.(node.full);
      if (closure)
        for (const r of served.references) {
          const sp = parseStorePathBasename(r, storeDir);
          if (r !== node.basename && sp.hash !== node.sp.hash && !nodes.has(sp.hash)) add(r);
        }
      return;
    }
    if (shared) {
      // Again: another graph may have claimed it while the cache was being asked.
      if (joinShared(node)) return;
      node.claim = claim(shared, node.sp.hash, node.full);
    }
    const inspected = await limit(() => steps.inspect(node.sp));
    node.inspected = inspected;
    for (const r of inspected.references) {
      if (r === node.basename) continue;
      const sp = parseStorePathBasename(r, storeDir);
      if (sp.hash === node.sp.hash) {
        throw new NixcacheError(
          'INTEGRITY',
          `${node.full} refers to its own hash part under another name (${storeDir}/${r}); only a reference to itself is legal`,
          { path: node.full, field: 'References', actual: r },
        );
      }
      let ref = nodes.get(sp.hash);
      if (!ref && !closure && !(await inCache(sp.hash)) && !(await options.servedElsewhere?.(sp))) {
        throw new NixcacheError(
          'NOT_FOUND',
          `cannot add ${node.full} to ${store.location}: its reference ${storeDir}/${r} is not in the cache (publish the closure)`,
          { path: node.full },
        );
      }
      if (!ref && !closure) continue;
      ref ??= add(r);
      if (ref.basename !== r) {
        throw new NixcacheError(
          'INTEGRITY',
          `${node.full} refers to ${storeDir}/${r}, but that hash part belongs to ${ref.full}`,
          { path: node.full, field: 'References', actual: r, expected: ref.basename },
        );
      }
      node.refs.push(ref);
    }
    node.state = 'ready';
  };
  const add = (basename: string): Node<T> => {
    const sp = parseStorePathBasename(basename, storeDir);
    const node: Node<T> = { sp, basename, full: formatStorePath(sp), state: 'pending', refs: [] };
    nodes.set(sp.hash, node);
    order.push(node);
    discoveries.push(discover(node).catch((e: Error) => fail(node, e)));
    return node;
  };

  try {
    const basenames = roots.map(basenameOf);
    const byHash = new Map<string, string>();
    for (const r of basenames) {
      const hash = parseStorePathBasename(r, storeDir).hash;
      const other = byHash.get(hash);
      if (other !== undefined && other !== r) {
        throw new NixcacheError(
          'BAD_STORE_PATH',
          `${storeDir}/${r} and ${storeDir}/${other} have the same hash part: at most one of them can be a store path`,
          { path: `${storeDir}/${r}` },
        );
      }
      byHash.set(hash, r);
    }
    // Roots first, so that without `closure` a reference to another root counts as published.
    for (const r of byHash.values()) add(r);
    while (discoveries.length) await Promise.all(discoveries.splice(0));

    // Phase 2: check. Strongly connected components come out references first.
    for (const component of components(order.filter((n) => n.state === 'ready'))) {
      if (component.length > 1) {
        const cycle = describeCycle(component);
        for (const node of component) {
          fail(
            node,
            new NixcacheError('INTEGRITY', `${node.full} is on a reference cycle: ${cycle}`, {
              path: node.full,
              field: 'References',
              cycle,
            }),
          );
        }
        continue;
      }
      const node = component[0]!;
      const bad = node.refs.find((r) => r.state === 'failed');
      if (bad) fail(node, referenceFailed(node, bad, failed.find((f) => f.path === bad.full)?.error));
    }

    // Phase 3: publish, narinfos references first.
    const ready = order.filter((n) => n.state === 'ready');
    if (!cacheInfo && (ready.length || skipped.length)) {
      // Nix refuses a cache without nix-cache-info: write it before the first NAR.
      try {
        const ensure = () => ensureCacheInfo(store, signal);
        await (shared ? shared.ensureCacheInfo(ensure) : ensure());
      } catch (e) {
        for (const node of ready) fail(node, e as Error);
        return { pushed, skipped, servedElsewhere: elsewhere, failed };
      }
    }
    const publish = async (node: Node<T>): Promise<void> => {
      const info = await limit(() => steps.publish(node.sp, node.inspected!));
      for (const ref of node.refs) {
        if (shared && ref.task && !shared.wait(node.sp.hash, ref.sp.hash)) {
          throw new NixcacheError(
            'INTEGRITY',
            `${node.full} is on a reference cycle through ${ref.full} (found across the paths copied at once)`,
            { path: node.full, field: 'References' },
          );
        }
        try {
          await ref.task;
        } catch (e) {
          throw referenceFailed(node, ref, e);
        }
      }
      // Once the NARs are up, the narinfos follow one another as each one's references land:
      // on a local store a chain of thousands that never waits, so give the event loop its turns.
      while (turnDue()) await turn();
      signal?.throwIfAborted();
      // Re-publishing what the cache has (force) keeps the signatures others added to it.
      await writeNarInfo(store, info, signal, { keepSignatures: options.force === true });
      node.claim?.settle();
      pushed.push(node.full);
      options.onDone?.(node.full);
    };
    // `ready` is in discovery order, referrers before references: start references first so that
    // they get the upload slots before the paths that wait for them.
    for (const node of [...ready].reverse()) {
      node.task = publish(node).catch((e: Error) => {
        fail(node, e);
        throw e;
      });
      node.task.catch(() => {});
    }
    await Promise.allSettled(ready.map((n) => n.task));
    // What another graph of the run was publishing counts as skipped here once it is in the cache.
    for (const node of order) {
      if (node.state !== 'shared') continue;
      try {
        await node.task;
        skipped.push(node.full);
        options.onSkip?.(node.full);
      } catch (e) {
        fail(
          node,
          new NixcacheError(
            'NOT_FOUND',
            `${node.full} could not be published`,
            { path: node.full },
            { cause: e },
          ),
        );
      }
    }
    return { pushed, skipped, servedElsewhere: elsewhere, failed };
  } finally {
    // Whatever ended this graph early (an abort, an unexpected error), no other graph of the run
    // may wait for a claim of its forever.
    const ended = new NixcacheError('ABORTED', 'the run publishing this path ended before it was published');
    for (const node of order) node.claim?.settle(ended);
  }
}

/** Pushes of at least this many paths look for them in one listing of the cache. */
export const LIST_FROM = 64;

/**
 * The hash parts of the cache's narinfos, or undefined when the cache has more than `cap` of
 * them (asking for each path is cheaper then: a listing page holds 1000 keys, a HEAD one) or
 * cannot be listed (plain HTTP, a listing error: each path is then asked for with retries).
 * A narinfo written after the listing by someone else is published again, as after a HEAD.
 */
async function listNarInfoHashes(
  store: BinaryCacheStore,
  cap: number,
  signal: AbortSignal | undefined,
): Promise<Set<string> | undefined> {
  const hashes = new Set<string>();
  try {
    for await (const hash of store.listNarInfos({ ...(signal && { signal }) })) {
      hashes.add(hash);
      if (hashes.size > cap) return undefined;
    }
  } catch (e) {
    if (signal?.aborted) throw e;
    return undefined;
  }
  return hashes;
}

function referenceFailed<T>(node: Node<T>, ref: Node<T>, cause: unknown): NixcacheError {
  return new NixcacheError(
    'NOT_FOUND',
    `${node.full}: its reference ${ref.full} could not be published`,
    { path: node.full },
    { cause },
  );
}

/** Tarjan's strongly connected components, each listed after the components it refers to. */
function components<T>(nodes: readonly Node<T>[]): Node<T>[][] {
  const index = new Map<Node<T>, number>();
  const low = new Map<Node<T>, number>();
  const onStack = new Set<Node<T>>();
  const stack: Node<T>[] = [];
  const out: Node<T>[][] = [];
  const member = new Set(nodes);
  let next = 0;
  // Iterative, so that a long chain of references cannot overflow the call stack.
  for (const root of nodes) {
    if (index.has(root)) continue;
    const frames: { node: Node<T>; i: number }[] = [{ node: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (frames.length) {
      const frame = frames[frames.length - 1]!;
      const { node } = frame;
      if (frame.i < node.refs.length) {
        const ref = node.refs[frame.i++]!;
        if (!member.has(ref)) continue;
        if (!index.has(ref)) {
          index.set(ref, next);
          low.set(ref, next++);
          stack.push(ref);
          onStack.add(ref);
          frames.push({ node: ref, i: 0 });
        } else if (onStack.has(ref)) {
          low.set(node, Math.min(low.get(node)!, index.get(ref)!));
        }
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1]?.node;
      if (parent) low.set(parent, Math.min(low.get(parent)!, low.get(node)!));
      if (low.get(node) === index.get(node)) {
        const component: Node<T>[] = [];
        let popped: Node<T>;
        do {
          popped = stack.pop()!;
          onStack.delete(popped);
          component.push(popped);
        } while (popped !== node);
        out.push(component);
      }
    }
  }
  return out;
}

/** One cycle through a strongly connected component, as `A → B → A`. */
function describeCycle<T>(component: readonly Node<T>[]): string {
  const inside = new Set(component);
  const start = component[0]!;
  // Breadth-first from start back to start, within the component (where a way back always exists).
  const from = new Map<Node<T>, Node<T>>();
  const queue: Node<T>[] = [start];
  let last: Node<T> | undefined;
  while (queue.length && !last) {
    const node = queue.shift()!;
    for (const ref of node.refs) {
      if (ref === start) {
        last = node;
        break;
      }
      if (inside.has(ref) && !from.has(ref)) {
        from.set(ref, node);
        queue.push(ref);
      }
    }
  }
  const path: Node<T>[] = [start];
  for (let n = last; n && n !== start; n = from.get(n)) path.splice(1, 0, n);
  return [...path, start].map((n) => n.full).join(' → ');
}
