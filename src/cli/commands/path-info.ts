/**
 * `nixcache path-info --store URL PATH...`: what a cache's narinfos say about store paths, like
 * `nix path-info --store URL`. `--json` prints Nix 2.8's array form; a path the cache lacks is
 * `{"path": …, "valid": false}`, one whose narinfo cannot be read also carries `"error"`; either
 * makes the exit code 1 while every other path is still reported. `-r` adds the closure, `-S`
 * the closure size.
 */
import { forEachBounded } from '../../cache/pipeline.js';
import { NixcacheError } from '../../errors.js';
import type { NarInfo } from '../../narinfo/types.js';
import type { BinaryCacheStore } from '../../store/binary-cache.js';
import { closeAll, errorJson, openCliStore } from '../common.js';
import { type CliContext, EXIT, writeJson, writeLine } from '../context.js';
import { narInfoJson, type PathInfoJson } from '../json.js';
import { lookupInCache, resolveStorePaths } from '../paths.js';
import { formatBytes } from '../progress.js';
import type { Command } from '../run.js';

type Row =
  | (PathInfoJson & { closureSize?: number })
  | { path: string; valid: false; error?: { code: string; message: string } };

/** Errors that are about one narinfo (as verify counts them 'unreadable'). */
const UNREADABLE: ReadonlySet<string> = new Set(['BAD_NARINFO', 'INTEGRITY', 'BAD_STORE_PATH']);

/** What the cache says about each path: its narinfo, absent, or the error reading it. */
type Entry = { info: NarInfo } | { missing: true } | { error: unknown };

/** Narinfos read at once (`-r` over a remote cache is one request a path). */
const PARALLELISM = 16;

/**
 * The entries of `roots` and, with `recursive`, of everything they reference: breadth-first, each
 * level read {@link PARALLELISM} at a time (one after the other, a 2,000-path closure took 2,000
 * round trips in a row).
 */
async function readEntries(
  store: BinaryCacheStore,
  roots: readonly string[],
  recursive: boolean,
  ctx: CliContext,
): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  /** Paths not asked for yet; each is entered as missing until its narinfo is read. */
  let level: string[] = [];
  const enqueue = (path: string) => {
    if (entries.has(path)) return;
    entries.set(path, { missing: true });
    level.push(path);
  };
  for (const root of roots) enqueue(root);
  while (level.length) {
    const batch = level;
    level = [];
    await forEachBounded(batch, { parallelism: PARALLELISM, signal: ctx.signal }, async (path) => {
      let entry: Entry;
      try {
        const info = await store.getNarInfo(path, { signal: ctx.signal });
        entry = info ? { info } : { missing: true };
      } catch (e) {
        ctx.signal.throwIfAborted();
        // One unreadable narinfo is reported for its path; the others are still shown.
        // A failure to reach the cache is the command's failure, not the path's.
        if (!(e instanceof NixcacheError && UNREADABLE.has(e.code))) throw e;
        entry = { error: e };
      }
      entries.set(path, entry);
      if (recursive && 'info' in entry)
        for (const r of entry.info.references) enqueue(`${store.storeDir}/${r}`);
    });
  }
  return entries;
}

/**
 * Sum of NarSize over the closure of each entry (paths the cache lacks count 0): references
 * resolved to indexes once, each closure walked with a visit stamp (a set of path strings per
 * closure made `-S` over thousands of paths slow).
 */
function closureSizes(entries: Map<string, Entry>, storeDir: string): (path: string) => number {
  const ids = new Map<string, number>();
  const infos: NarInfo[] = [];
  for (const [path, e] of entries) {
    if (!('info' in e)) continue;
    ids.set(path, infos.length);
    infos.push(e.info);
  }
  const refs = infos.map((info) => {
    const out: number[] = [];
    for (const r of info.references) {
      const id = ids.get(`${storeDir}/${r}`);
      if (id !== undefined) out.push(id);
    }
    return out;
  });
  const stamp = new Int32Array(infos.length).fill(-1);
  let walk = 0;
  return (path) => {
    const root = ids.get(path);
    if (root === undefined) return 0;
    const mark = walk++;
    const stack = [root];
    stamp[root] = mark;
    let total = 0;
    while (stack.length) {
      const id = stack.pop()!;
      total += infos[id]!.narSize;
      for (const r of refs[id]!) {
        if (stamp[r] === mark) continue;
        stamp[r] = mark;
        stack.push(r);
      }
    }
    return total;
  };
}

const pathInfo: Command = {
  spec: {
    name: 'path-info',
    summary: 'show what a binary cache knows about store paths',
    usage: ['--store URL [--json] [--sigs] [-r] [-S] PATH...'],
    details: [
      'PATH may be a full store path, <hash>-<name>, a bare hash part, or a link to a store path such as ./result.',
      '--json prints an array like `nix path-info --json` (Nix 2.8): [{"path","valid":true,"narHash","narSize","references","deriver","signatures","ca","url","compression","downloadHash","downloadSize","closureSize"}], with {"path","valid":false} for paths the cache does not have and {"path","valid":false,"error":{"code","message"}} for narinfos that cannot be read. Exit 1 when any path is missing or unreadable.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache to ask (required)' },
      sigs: { type: 'boolean', help: 'show signatures' },
      recursive: {
        type: 'boolean',
        short: 'r',
        help: 'show the closure of the paths too (as `nix path-info -r`)',
      },
      'closure-size': {
        type: 'boolean',
        short: 'S',
        help: 'show the total NAR size of each closure (as `nix path-info -S`)',
      },
      size: {
        type: 'boolean',
        short: 's',
        help: 'show the NAR size (always shown; accepted as in `nix path-info -s`)',
      },
      json: { type: 'boolean', help: 'print JSON' },
    },
    positionals: { min: 1, name: 'PATH' },
    examples: [
      'nixcache path-info --store https://cache.nixos.org /nix/store/…-hello-2.12',
      'nixcache path-info --store file:///srv/cache -rS ./result',
      "nixcache path-info --store 's3://nix-cache?endpoint=s3.homelab.local' --json /nix/store/…-app | jq '.[0].references'",
    ],
  },
  async run(args, ctx) {
    const store = await openCliStore(args.required('store'), ctx, 'store', 'path-info');
    try {
      const roots = await resolveStorePaths(
        args.positionals,
        store.storeDir,
        'path-info',
        lookupInCache(store, ctx.signal),
      );
      const recursive = args.flag('recursive');
      const withClosure = args.flag('closure-size');
      const entries = await readEntries(store, roots, recursive || withClosure, ctx);
      const closureSize = withClosure ? closureSizes(entries, store.storeDir) : undefined;
      const shown = recursive ? [...entries.keys()].sort() : [...new Set(roots)];
      const rows: Row[] = shown.map((path) => {
        const e = entries.get(path)!;
        if ('info' in e) {
          return {
            ...narInfoJson(e.info),
            ...(closureSize && { closureSize: closureSize(path) }),
          };
        }
        if ('missing' in e) return { path, valid: false };
        return { path, valid: false, error: errorJson(e.error) };
      });
      if (args.flag('json')) await writeJson(ctx.stdout, rows);
      else {
        const width = Math.max(...rows.map((r) => r.path.length));
        const lines = rows.map((r) => {
          if (!r.valid) {
            return `${r.path.padEnd(width)}  ${r.error ? `unreadable: ${r.error.message}` : 'not in the cache'}`;
          }
          const closure = r.closureSize === undefined ? '' : `  ${formatBytes(r.closureSize).padStart(10)}`;
          const sigs = args.flag('sigs') ? `  ${r.signatures.join(' ')}` : '';
          return `${r.path.padEnd(width)}  ${formatBytes(r.narSize).padStart(10)}${closure}${sigs}`;
        });
        await writeLine(ctx.stdout, lines.join('\n'));
      }
      return rows.every((r) => r.valid) ? EXIT.ok : EXIT.problems;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { 'path-info': pathInfo };
