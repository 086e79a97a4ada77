/**
 * Pins: named roots for `collectGarbage`, stored in the cache itself so every machine that pushes
 * sees them. A pin is a readable JSON file `pins/<name>.json` (Nix ignores every key but
 * `nix-cache-info`, `<hash>.narinfo`, `<hash>.ls`, `nar/`, `log/`, `debuginfo/` and
 * `realisations/`) holding its newest revisions, newest first; each revision is a set of store
 * paths whose closures gc keeps. A pin keeps its last `keepRevisions` revisions (like cachix pins).
 *
 * Updates are read-modify-write with conditional writes (If-None-Match for a new pin, If-Match
 * with the ETag read otherwise), retried on a conflict, so two pushers that pin the same name at
 * once both keep their revision. On file:// the compare-and-swap is real (link() for create,
 * a lock file plus the etag check for update); on S3 it is as good as the server's conditional
 * writes (AWS S3, R2 and MinIO honour them; s3rver ignores them).
 */
import { NixcacheError } from '../errors.js';
import { fromUtf8 } from '../internal/bytes.js';
import { collectBytes } from '../internal/iter.js';
import type { BinaryCacheStore } from '../store/binary-cache.js';
import { parseStorePath } from '../store-path/store-path.js';
import { withRetry } from './retry.js';

/** Where pins live in the cache. */
export const PINS_PREFIX = 'pins/';
/** Revisions a new pin keeps unless told otherwise. */
export const DEFAULT_KEEP_REVISIONS = 5;
const PIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** One revision of a pin: the store paths whose closures it keeps. */
export interface PinRevision {
  /** ISO 8601 time the revision was made. */
  readonly time: string;
  /** Full store paths, sorted. */
  readonly paths: readonly string[];
}

/** A pin as stored (`pins/<name>.json`). */
export interface Pin {
  readonly name: string;
  readonly keepRevisions: number;
  /** Newest first. */
  readonly revisions: readonly PinRevision[];
}

/**
 * Checks a pin name: letters, digits, `.`, `_`, `+`, `-`, not starting with a punctuation mark.
 *
 * @throws {NixcacheError} BAD_ARGUMENT naming the pin.
 * @example checkPinName('web-prod')
 */
export function checkPinName(name: string): string {
  if (!PIN_NAME.test(name)) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `pin name ${JSON.stringify(name)} is not allowed: use letters, digits, '.', '_', '+' and '-' (at most 128, starting with a letter or digit)`,
      { field: 'pin', actual: name },
    );
  }
  return name;
}

/**
 * The cache key of a pin.
 *
 * @throws {NixcacheError} BAD_ARGUMENT for a bad name.
 * @example pinKey('web') // 'pins/web.json'
 */
export function pinKey(name: string): string {
  return `${PINS_PREFIX}${checkPinName(name)}.json`;
}

/**
 * Parses a pin file.
 *
 * @throws {NixcacheError} BAD_ARGUMENT naming the key and what is wrong.
 * @example parsePin('{"version":1,"name":"web","keepRevisions":5,"revisions":[]}', 'pins/web.json')
 */
export function parsePin(text: string, source: string, storeDir = '/nix/store'): Pin {
  const bad = (why: string) =>
    new NixcacheError('BAD_ARGUMENT', `${source}: not a nixcache pin: ${why}`, { source });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  const d = doc as Record<string, unknown>;
  if (typeof d !== 'object' || d === null || d.version !== 1) throw bad('expected {"version":1,…}');
  if (typeof d.name !== 'string') throw bad('no "name"');
  const keep = d.keepRevisions;
  if (typeof keep !== 'number' || !Number.isSafeInteger(keep) || keep < 1) throw bad('bad "keepRevisions"');
  if (!Array.isArray(d.revisions)) throw bad('no "revisions" list');
  const revisions = d.revisions.map((r: unknown, i: number) => {
    const rev = r as Record<string, unknown>;
    if (typeof rev?.time !== 'string' || !Array.isArray(rev.paths)) throw bad(`revision ${i} is malformed`);
    const paths = rev.paths.map((p: unknown) => {
      if (typeof p !== 'string') throw bad(`revision ${i} has a path that is not a string`);
      try {
        parseStorePath(p, storeDir);
      } catch {
        throw bad(`revision ${i}: ${JSON.stringify(p)} is not a store path in ${storeDir}`);
      }
      return p;
    });
    return { time: rev.time, paths };
  });
  return { name: d.name, keepRevisions: keep, revisions };
}

/**
 * The JSON text of a pin (indented, for people reading the bucket).
 *
 * @example await store.putFile(pinKey(pin.name), new TextEncoder().encode(formatPin(pin)))
 */
export function formatPin(pin: Pin): string {
  return `${JSON.stringify({ version: 1, ...pin }, null, 2)}\n`;
}

async function readPin(
  store: BinaryCacheStore,
  name: string,
  signal?: AbortSignal,
): Promise<{ pin: Pin; etag?: string } | undefined> {
  const key = pinKey(name);
  const object = await withRetry(() => store.backend.get(key, { ...(signal && { signal }) }), { signal });
  if (!object) return undefined;
  const pin = parsePin(fromUtf8(await collectBytes(object.body)), `${store.location}/${key}`, store.storeDir);
  return { pin, ...(object.etag !== undefined && { etag: object.etag }) };
}

/**
 * Reads one pin; undefined when there is none.
 *
 * @throws {NixcacheError} BAD_ARGUMENT for a bad name or a malformed pin file; NETWORK/IO.
 * @example const pin = await getPin(store, 'web')
 */
export async function getPin(
  store: BinaryCacheStore,
  name: string,
  options: { signal?: AbortSignal } = {},
): Promise<Pin | undefined> {
  return (await readPin(store, name, options.signal))?.pin;
}

/**
 * Every pin of the cache, by name.
 *
 * @throws {NixcacheError} UNSUPPORTED when the store cannot list (HTTP); BAD_ARGUMENT for a
 *   malformed pin file; NETWORK/IO.
 * @example for (const pin of await listPins(store)) console.log(pin.name, pin.revisions.length)
 */
export async function listPins(
  store: BinaryCacheStore,
  options: { signal?: AbortSignal } = {},
): Promise<Pin[]> {
  const signal = options.signal;
  const names: string[] = [];
  for await (const key of store.backend.list(PINS_PREFIX, { ...(signal && { signal }) })) {
    const name = key.slice(PINS_PREFIX.length);
    if (name.endsWith('.json') && PIN_NAME.test(name.slice(0, -5))) names.push(name.slice(0, -5));
  }
  const pins: Pin[] = [];
  for (const name of names.sort()) {
    const pin = await getPin(store, name, options);
    if (pin) pins.push(pin);
  }
  return pins;
}

export interface PinOptions {
  /** Revisions to keep (default: the pin's current setting, or 5 for a new pin). */
  readonly keepRevisions?: number;
  /** Check that every path has a narinfo in the cache first (default true). */
  readonly checkPaths?: boolean;
  /** Read-modify-write attempts when another writer races us (default 20). */
  readonly attempts?: number;
  /** The revision's time (default now). */
  readonly now?: Date;
  readonly signal?: AbortSignal;
}

/**
 * Makes `paths` the newest revision of pin `name` (creating the pin), dropping revisions beyond
 * `keepRevisions`. A revision equal to the newest one is not added twice.
 *
 * @throws {NixcacheError} BAD_ARGUMENT (name, paths, keepRevisions); NOT_FOUND when a path has no
 *   narinfo in the cache; CONFLICT when other writers kept winning; NETWORK/IO.
 * @example await addPinRevision(store, 'web', ['/nix/store/…-web-1.2'], { keepRevisions: 3 })
 */
export async function addPinRevision(
  store: BinaryCacheStore,
  name: string,
  paths: readonly string[],
  options: PinOptions = {},
): Promise<Pin> {
  const signal = options.signal;
  const key = pinKey(name);
  if (paths.length === 0)
    throw new NixcacheError('BAD_ARGUMENT', `pin ${name}: no paths given`, { field: 'pin' });
  const sorted = [...new Set(paths)].sort();
  for (const p of sorted) parseStorePath(p, store.storeDir);
  if (
    options.keepRevisions !== undefined &&
    !(Number.isSafeInteger(options.keepRevisions) && options.keepRevisions >= 1)
  ) {
    throw new NixcacheError('BAD_ARGUMENT', `pin ${name}: keepRevisions must be a whole number >= 1`, {
      field: 'keepRevisions',
      actual: String(options.keepRevisions),
    });
  }
  if (options.checkPaths ?? true) {
    for (const p of sorted) {
      if (!(await withRetry(() => store.hasNarInfo(p, { ...(signal && { signal }) }), { signal }))) {
        throw new NixcacheError(
          'NOT_FOUND',
          `pin ${name}: ${p} is not in ${store.location} (push it first)`,
          {
            path: p,
          },
        );
      }
    }
  }
  const attempts = options.attempts ?? 20;
  for (let attempt = 0; ; attempt++) {
    const current = await readPin(store, name, signal);
    const keep = options.keepRevisions ?? current?.pin.keepRevisions ?? DEFAULT_KEEP_REVISIONS;
    const old = current?.pin.revisions ?? [];
    const same = old[0] !== undefined && old[0].paths.join('\n') === sorted.join('\n');
    const revisions = same
      ? old
      : [{ time: (options.now ?? new Date()).toISOString(), paths: sorted }, ...old];
    const pin: Pin = { name, keepRevisions: keep, revisions: revisions.slice(0, keep) };
    if (current && same && keep === current.pin.keepRevisions) return current.pin;
    try {
      await withRetry(
        () =>
          store.putFile(key, new TextEncoder().encode(formatPin(pin)), {
            contentType: 'application/json',
            ...(current ? { ifMatch: current.etag ?? '*' } : { ifNoneMatch: true }),
            ...(signal && { signal }),
          }),
        { signal },
      );
      return pin;
    } catch (e) {
      if (!(e instanceof NixcacheError && e.code === 'CONFLICT') || attempt + 1 >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
    }
  }
}

/**
 * Removes a pin (its paths become collectable by the next gc); false when there was none.
 *
 * @throws {NixcacheError} BAD_ARGUMENT for a bad name; NETWORK/IO.
 * @example await removePin(store, 'web')
 */
export async function removePin(
  store: BinaryCacheStore,
  name: string,
  options: { signal?: AbortSignal } = {},
): Promise<boolean> {
  const signal = options.signal;
  const key = pinKey(name);
  if (!(await withRetry(() => store.backend.head(key, { ...(signal && { signal }) }), { signal })))
    return false;
  await withRetry(() => store.backend.delete(key, { ...(signal && { signal }) }), { signal });
  return true;
}
