/**
 * Shared parts of the gc / pins / repair tests: a synthetic store directory (input-addressed paths
 * whose files name their references, so push finds them by scanning), a cache scenario with pins,
 * old unpinned pushes and NARs shared by two narinfos, helpers that age objects (file mtimes, on a
 * file:// cache or in s3rver's data directory), and an independent closure computation to judge
 * what gc deleted.
 */
import { readdirSync, statSync, utimesSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { addPinRevision } from '../../src/cache/pins.js';
import { pushPaths } from '../../src/cache/push.js';
import { hashBytes } from '../../src/hash/hasher.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import type { SecretKey } from '../../src/signing/keys.js';
import type { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { listingKey, narInfoKey, narUrlToKey } from '../../src/store/layout.js';
import { makeStorePath } from '../../src/store-path/make.js';
import { parseStorePath, parseStorePathBasename } from '../../src/store-path/store-path.js';

export const DAY = 86_400_000;

/** A synthetic path: its files and references. */
export interface PathSpec {
  readonly name: string;
  readonly refs?: readonly string[];
  /** Contents of `payload`; the same payload and no refs give the same NAR. */
  readonly payload?: string;
  /** Seed of the (input-addressed) hash; defaults to the name. */
  readonly seed?: string;
}

/** Adds a path to a store directory; returns its full store path. */
export async function addPath(dir: string, spec: PathSpec): Promise<string> {
  const path = makeStorePath(
    'output:out',
    hashBytes('sha256', `gc-test:${spec.seed ?? spec.name}`),
    spec.name,
  );
  const at = join(dir, path.slice('/nix/store/'.length));
  await mkdir(at, { recursive: true });
  await writeFile(join(at, 'payload'), spec.payload ?? `payload of ${spec.name}\n${'x'.repeat(2000)}\n`);
  if (spec.refs?.length) await writeFile(join(at, 'refs'), `${spec.refs.join('\n')}\n`);
  return path;
}

/** Sets the mtime of every file under `dir` back by `ms` (ages a file:// cache or s3rver's objects). */
export function ageFiles(dir: string, ms: number): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) ageFiles(p, ms);
    else if (entry.isFile()) {
      const s = statSync(p);
      utimesSync(p, s.atime, new Date(s.mtimeMs - ms));
    }
  }
}

/** Every object of a store: key → size. */
export async function snapshot(store: BinaryCacheStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of store.backend.listObjects!('', { recursive: true })) out.set(o.key, o.size);
  return out;
}

/** The keys (narinfo, .ls, NAR) of the closures of `roots`, as the cache's narinfos record them. */
export async function closureKeys(store: BinaryCacheStore, roots: readonly string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  const seen = new Set<string>();
  const todo = roots.map((r) => parseStorePath(r).hash);
  while (todo.length) {
    const hash = todo.pop()!;
    if (seen.has(hash)) continue;
    seen.add(hash);
    const bytes = await store.getFile(narInfoKey(hash));
    if (!bytes) continue;
    const info = parseNarInfo(new TextDecoder().decode(bytes));
    keys.add(narInfoKey(hash));
    keys.add(listingKey(hash));
    keys.add(narUrlToKey(info.url).key);
    for (const r of info.references) todo.push(parseStorePathBasename(r).hash);
  }
  return keys;
}

/** The scenario of the must-show gc test. */
export interface GcScenario {
  /** pin name → revisions (oldest first), each a list of top-level paths. */
  readonly pins: Readonly<Record<string, readonly (readonly string[])[]>>;
  /** Revisions a keepRevisions of 2 drops. */
  readonly dropped: readonly string[];
  /** Pushed, never pinned. */
  readonly unpinned: readonly string[];
  /** Two paths with the same NAR: one in a kept closure, one not. */
  readonly twinKept: string;
  readonly twinGone: string;
  /** Two paths with the same NAR, neither kept. */
  readonly twinsGone: readonly [string, string];
  /** Every top-level path pushed. */
  readonly all: readonly string[];
}

/**
 * Builds the scenario's store directory: three apps with three revisions each (the first is dropped
 * by keepRevisions 2), each revision on its own lib over a shared base, old unpinned pushes with
 * their own deps, and twins (identical NARs).
 */
export async function makeGcScenario(dir: string): Promise<GcScenario> {
  const base = await addPath(dir, { name: 'base-libc' });
  const twinKept = await addPath(dir, { name: 'twin-kept', payload: 'the same bytes\n' });
  const twinGone = await addPath(dir, { name: 'twin-gone', payload: 'the same bytes\n' });
  const twinsGone: [string, string] = [
    await addPath(dir, { name: 'twin-x', payload: 'other shared bytes\n' }),
    await addPath(dir, { name: 'twin-y', payload: 'other shared bytes\n' }),
  ];
  const pins: Record<string, string[][]> = {};
  const dropped: string[] = [];
  for (const app of ['alpha', 'beta', 'gamma']) {
    pins[app] = [];
    for (let rev = 0; rev < 3; rev++) {
      const lib = await addPath(dir, { name: `${app}-lib-${rev}`, refs: [base] });
      const data = await addPath(dir, { name: `${app}-data-${rev}` });
      const refs = [lib, data, ...(app === 'alpha' && rev === 2 ? [twinKept] : [])];
      const top = await addPath(dir, { name: `${app}-${rev}`, refs });
      if (rev === 0) dropped.push(top);
      pins[app].push([top]);
    }
  }
  const oldDep = await addPath(dir, { name: 'old-dep', refs: [base] });
  const unpinned = [
    await addPath(dir, { name: 'old-tool', refs: [oldDep, twinGone] }),
    await addPath(dir, { name: 'old-thing', refs: [twinsGone[0], twinsGone[1]] }),
    await addPath(dir, { name: 'old-alone' }),
  ];
  const all = [...Object.values(pins).flat(2), ...unpinned];
  return { pins, dropped, unpinned, twinKept, twinGone, twinsGone, all };
}

/** Pushes paths signed; fails the test on any failure. */
export async function push(
  store: BinaryCacheStore,
  storeDir: string,
  paths: readonly string[],
  key: SecretKey,
): Promise<void> {
  const r = await pushPaths(store, paths, { storeDir, secretKeys: [key] });
  expect(r.failed.map((f) => `${f.path}: ${f.error.message}`)).toEqual([]);
}

/**
 * Pushes the scenario, pinning each app revision (keepRevisions 2) as it goes, then the unpinned
 * paths; returns the top-level paths of the kept revisions.
 */
export async function pushScenario(
  store: BinaryCacheStore,
  storeDir: string,
  sc: GcScenario,
  key: SecretKey,
): Promise<string[]> {
  for (let rev = 0; rev < 3; rev++) {
    for (const [name, revisions] of Object.entries(sc.pins)) {
      await push(store, storeDir, revisions[rev]!, key);
      await addPinRevision(store, name, revisions[rev]!, { keepRevisions: 2 });
    }
  }
  await push(store, storeDir, sc.unpinned, key);
  return Object.values(sc.pins).flatMap((revs) => revs.slice(1).flat());
}
