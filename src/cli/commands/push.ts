/**
 * `nixcache push --to URL PATH...`: the `nix copy --to` of nixcache. Reads the paths (and by
 * default their closures) from a local store directory, signs them with the keys named by
 * `--secret-key-file` and the URL's `secret-key(s)`, and uploads NARs first and narinfos last.
 * Exit 1 when any path failed. Ctrl-C aborts without leaving a narinfo behind.
 */
import { stat } from 'node:fs/promises';
import { DEFAULT_NIX_DB, hasLocalNixDb, localNixMetadata } from '../../cache/local-metadata.js';
import { addPinRevision, checkPinName } from '../../cache/pins.js';
import type { PathMetadata } from '../../cache/push.js';
import { pushPaths } from '../../cache/push.js';
import { Upstreams } from '../../cache/upstream.js';
import { warmUpCompressBytes } from '../../compression/compress.js';
import { NixcacheError } from '../../errors.js';
import type { ParsedArgs } from '../args.js';
import {
  closeAll,
  errorJson,
  loadSecretKeys,
  openCliStore,
  parseTrustedKeys,
  readInputText,
} from '../common.js';
import { type CliContext, EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { lookupInDirectory, resolveStorePaths } from '../paths.js';
import { Progress, wantProgress } from '../progress.js';
import type { Command } from '../run.js';
import { safeMessage } from '../safe-text.js';

function metadataError(file: string, why: string): NixcacheError {
  return new NixcacheError('BAD_ARGUMENT', `--metadata '${file}': ${why}`, { file });
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

/** One entry of `nix path-info --json` → PathMetadata. */
function toMetadata(file: string, path: string, raw: unknown): PathMetadata {
  if (typeof raw !== 'object' || raw === null)
    throw metadataError(file, `entry for ${path} is not an object`);
  const r = raw as Record<string, unknown>;
  const references = stringList(r.references);
  if (r.references !== undefined && !references)
    throw metadataError(file, `${path}: references is not a list`);
  const signatures = stringList(r.signatures);
  const m: Record<string, unknown> = {};
  if (references) m.references = references;
  if (typeof r.deriver === 'string') m.deriver = r.deriver;
  if (typeof r.ca === 'string') m.ca = r.ca;
  if (typeof r.narHash === 'string') m.narHash = r.narHash;
  if (typeof r.narSize === 'number') m.narSize = r.narSize;
  if (signatures?.length) m.signatures = signatures;
  return m as PathMetadata;
}

/**
 * Reads `nix path-info --json` output: the array form of Nix 2.8 (`[{"path": …, …}]`) or the
 * object form of newer Nix (`{"/nix/store/…": {…} | null}`).
 */
export async function readMetadata(file: string, ctx: CliContext): Promise<Map<string, PathMetadata>> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readInputText(file, ctx));
  } catch (e) {
    if (e instanceof SyntaxError) throw metadataError(file, `not JSON (${e.message})`);
    throw e;
  }
  const map = new Map<string, PathMetadata>();
  if (Array.isArray(doc)) {
    for (const entry of doc) {
      const path = (entry as { path?: unknown } | null)?.path;
      if (typeof path !== 'string') throw metadataError(file, 'an array entry has no "path"');
      if ((entry as { valid?: unknown }).valid === false) continue;
      map.set(path, toMetadata(file, path, entry));
    }
  } else if (typeof doc === 'object' && doc !== null) {
    for (const [path, entry] of Object.entries(doc)) {
      if (entry === null) continue;
      map.set(path, toMetadata(file, path, entry));
    }
  } else {
    throw metadataError(file, 'expected the output of `nix path-info --json` (an array or an object)');
  }
  return map;
}

/** Paths from standard input, one a line; blank lines and `#` comments are skipped. */
async function readPathLines(ctx: CliContext): Promise<string[]> {
  const text = await readInputText('-', ctx);
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * Where push takes each path's metadata from: --metadata, else the Nix database (--nix-db, or the
 * default one when it exists and the paths are read from /nix/store), else nothing (scan), said once.
 */
async function pushMetadata(
  args: ParsedArgs,
  ctx: CliContext,
  paths: readonly string[],
  storeDir: string,
  logicalDir: string,
): Promise<Map<string, PathMetadata> | undefined> {
  const file = args.string('metadata');
  const dbFile = args.string('nix-db');
  if (file !== undefined && dbFile !== undefined)
    throw new UsageError('give either --metadata or --nix-db, not both', 'push');
  if (file !== undefined) return readMetadata(file, ctx);
  if (args.flag('no-nix-db')) return undefined;
  const db = dbFile ?? ctx.env.NIXCACHE_NIX_DB ?? DEFAULT_NIX_DB;
  // Paths read from another directory than the store (a copy, a test store) are not the
  // database's: scanning is what the user asked for.
  if (dbFile === undefined && storeDir !== logicalDir) return undefined;
  if (dbFile === undefined && !hasLocalNixDb(db)) {
    ctx.stderr.write(`nixcache: note: no Nix database at ${db}; references are found by scanning the NARs\n`);
    return undefined;
  }
  return localNixMetadata(paths, { db, closure: !args.flag('no-closure') });
}

/** The --skip-upstream caches, or undefined when none is given. */
async function openUpstreams(
  args: ParsedArgs,
  ctx: CliContext,
  storeDir: string,
): Promise<Upstreams | undefined> {
  const urls = args.strings('skip-upstream');
  const keys = parseTrustedKeys(args.strings('upstream-key'), 'push');
  if (urls.length === 0) {
    if (keys.length) throw new UsageError('--upstream-key needs --skip-upstream URL', 'push');
    return undefined;
  }
  if (keys.length === 0) throw new UsageError('--skip-upstream needs at least one --upstream-key', 'push');
  return Upstreams.open({
    urls,
    trustedKeys: keys,
    storeDir,
    optional: args.flag('upstream-optional'),
    signal: ctx.signal,
  });
}

function checkPinNameForCli(name: string): void {
  try {
    checkPinName(name);
  } catch (e) {
    throw new UsageError(`--pin: ${(e as Error).message}`, 'push');
  }
}

const push: Command = {
  spec: {
    name: 'push',
    summary: 'upload store paths and their closures to a binary cache',
    usage: [
      '--to URL [--secret-key-file FILE]... [--store-dir DIR] [--no-closure] [--metadata FILE] [--json] PATH...',
    ],
    details: [
      "Like `nix copy --to URL PATH...` without Nix: each path is read from the store directory (default /nix/store; any directory laid out like a store works), its NAR is built, compressed as the URL says (compression=xz by default) and uploaded; the narinfo is written last, after the narinfos of its references. Paths already in the cache are skipped. Metadata: where the local Nix database exists (/nix/var/nix/db/db.sqlite, $NIXCACHE_NIX_DB, or --nix-db FILE) and the paths are read from /nix/store, each path's references, deriver, CA, NarHash, NarSize and existing signatures come from it, read-only and without any lock, exactly as `nix copy` publishes them; a path whose NAR no longer matches the database (changed on disk) is refused. Otherwise --metadata gives them, or references are found by scanning the NARs (a first pass, so that a reference cycle fails before anything is uploaded). A CA claim is always checked against the contents.",
      'Upstream caches: with --skip-upstream URL and --upstream-key KEY (both repeatable, e.g. https://cache.nixos.org and its key), a path an upstream serves with a valid signature by an upstream key is not uploaded; the closure is still walked through it, and the narinfos pushed still list it as a reference, since Nix substitutes it from the upstream. An upstream that cannot be reached is an error, unless --upstream-optional (then nothing is skipped, and the output says so).',
      'Signing keys come from --secret-key-file and from the URL parameters secret-key/secret-keys (file names, as in Nix). Without any key the narinfos are unsigned (only content-addressed paths are then trusted by Nix).',
      '--json prints {"pushed":[PATH…],"skipped":[PATH…],"upstream":[PATH…],"upstreamUnavailable":REASON?,"failed":[{"path","code","message"}]}. Exit 1 when any path failed.',
    ],
    options: {
      to: { type: 'string', value: 'URL', help: 'the cache to push to (required)' },
      'secret-key-file': {
        type: 'string',
        multiple: true,
        value: 'FILE',
        help: 'sign with the secret key in FILE',
        aliases: ['key-file'],
      },
      'store-dir': {
        type: 'string',
        value: 'DIR',
        help: 'where the paths are read from (default /nix/store)',
      },
      'no-closure': {
        type: 'boolean',
        help: 'push only the given paths (their references must be in the cache)',
      },
      metadata: {
        type: 'string',
        value: 'FILE',
        help: 'output of `nix path-info --json --recursive PATH` (references, deriver, CA, signatures)',
      },
      'nix-db': {
        type: 'string',
        value: 'FILE',
        help: `the Nix database to take metadata from (default $NIXCACHE_NIX_DB or ${DEFAULT_NIX_DB}, when it exists)`,
      },
      'no-nix-db': {
        type: 'boolean',
        help: 'find references by scanning NARs even where a Nix database exists',
      },
      'skip-upstream': {
        type: 'string',
        multiple: true,
        value: 'URL',
        help: 'do not upload paths this cache serves signed by an --upstream-key',
      },
      'upstream-key': {
        type: 'string',
        multiple: true,
        value: 'KEY',
        help: 'a public key NAME:BASE64 trusted for --skip-upstream (space-separated lists too)',
      },
      'upstream-optional': { type: 'boolean', help: 'push everything when an upstream cannot be reached' },
      stdin: {
        type: 'boolean',
        help: 'read the paths from standard input, one a line (after any PATH arguments)',
      },
      parallelism: {
        type: 'string',
        value: 'N',
        help: 'NARs compressed at once, and NARs uploaded at once (default 2 each)',
      },
      force: {
        type: 'boolean',
        help: 'upload even paths the cache already has (keeping the signatures it has for the same NAR)',
      },
      json: { type: 'boolean', help: 'print the result as JSON (no progress bar)' },
      verbose: { type: 'boolean', short: 'v', help: 'print a line per path on stderr' },
      pin: {
        type: 'string',
        value: 'NAME',
        help: 'make the given paths the newest revision of pin NAME once all are in the cache (see nixcache pin)',
      },
      'keep-revisions': { type: 'string', value: 'K', help: 'with --pin: revisions the pin keeps' },
    },
    positionals: { min: 0, name: 'PATH' },
    examples: [
      "nixcache push --to 's3://nix-cache?profile=nixbuilder&endpoint=s3.homelab.local' --secret-key-file /etc/nix/cache.secret ./result",
      "nixcache push --to 's3://nix-cache?secret-key=/etc/nix/cache.secret&compression=zstd' $(nix-store -qR ./result)",
      'nix path-info --json --recursive ./result > meta.json && nixcache push --to file:///srv/cache --metadata meta.json ./result',
      'nix-store -qR ./result | nixcache push --to file:///srv/cache --stdin',
      'nixcache push --to file:///srv/cache /run/current-system',
    ],
  },
  async run(args, ctx) {
    const url = args.required('to');
    const pinName = args.string('pin');
    const keepRevisions = args.integer('keep-revisions', 1, 10_000);
    if (pinName !== undefined) checkPinNameForCli(pinName);
    const parallelism = args.integer('parallelism', 1, 64);
    const json = args.flag('json');
    const store = await openCliStore(url, ctx, 'to', 'push');
    // The xz worker takes tens of milliseconds to load: start it before the keys, the paths and
    // their metadata are read (the database is read synchronously), rather than when pushPaths
    // starts (measured on 600 small paths: the first NAR was compressed 70 ms later).
    await warmUpCompressBytes(store.config.compression);
    let upstreams: Upstreams | undefined;
    try {
      const keys = await loadSecretKeys(
        [...args.strings('secret-key-file'), ...store.config.secretKeyFiles],
        'push',
      );
      const storeDir = args.string('store-dir') ?? '/nix/store';
      const given = [...args.positionals];
      if (args.flag('stdin')) given.push(...(await readPathLines(ctx)));
      if (given.length === 0) throw new UsageError('missing PATH (or --stdin)', 'push');
      const paths = await resolveStorePaths(
        given,
        store.storeDir,
        'push',
        lookupInDirectory(storeDir, store.storeDir),
        storeDir,
      );
      const metadata = await pushMetadata(args, ctx, paths, storeDir, store.storeDir);
      const dirStat = await stat(storeDir).catch(() => undefined);
      if (!dirStat?.isDirectory()) {
        throw new NixcacheError('IO', `store directory '${storeDir}' does not exist or is not a directory`, {
          file: storeDir,
        });
      }
      upstreams = await openUpstreams(args, ctx, store.storeDir);
      if (upstreams?.unavailable !== undefined)
        ctx.stderr.write(
          `nixcache: warning: ${safeMessage(`upstream unavailable, nothing is skipped: ${upstreams.unavailable}`)}\n`,
        );
      const progress = new Progress(ctx.stderr, 'push', wantProgress(ctx.stderr, json, ctx.env));
      const verbose = args.flag('verbose');
      const known = new Set<string>();
      const s = progress.state;
      let result: Awaited<ReturnType<typeof pushPaths>>;
      try {
        result = await pushPaths(store, paths, {
          storeDir,
          secretKeys: keys,
          ...(args.flag('no-closure') && { closure: false }),
          ...(metadata && { metadata }),
          ...(parallelism !== undefined && { parallelism }),
          ...(args.flag('force') && { force: true }),
          ...(upstreams && { upstreams }),
          signal: ctx.signal,
          onProgress(event) {
            if (!known.has(event.path)) {
              known.add(event.path);
              s.total++;
            }
            switch (event.type) {
              case 'start':
                s.active = (s.active ?? 0) + 1;
                if (verbose) progress.log(`pushing ${event.path}`);
                break;
              case 'nar':
                // NAR bytes as they are read and compressed: the slow part, so the line moves
                // while a big path is staged (the upload's compressed bytes may be tiny).
                s.bytes += event.bytes;
                break;
              case 'skip':
                s.done++;
                s.skipped++;
                if (verbose) progress.log(`skipped ${event.path} (${event.reason})`);
                break;
              case 'done':
                s.done++;
                s.active = Math.max(0, (s.active ?? 0) - 1);
                if (verbose) progress.log(`pushed ${event.path}`);
                break;
              case 'failed':
                s.done++;
                s.active = Math.max(0, (s.active ?? 0) - 1);
                s.failed++;
                if (!json && !ctx.signal.aborted)
                  progress.log(`nixcache: failed: ${errorJson(event.error).message}`);
                break;
            }
          },
        });
      } catch (e) {
        if (e instanceof NixcacheError && e.code === 'BAD_STORE_PATH')
          throw new UsageError(e.message, 'push');
        throw e;
      } finally {
        progress.finish();
      }
      if (ctx.signal.aborted) return EXIT.interrupted;
      // Pin only a complete push: a pin must name paths whose closures are in the cache.
      const pin =
        pinName !== undefined && result.failed.length === 0
          ? await addPinRevision(store, pinName, paths, {
              ...(keepRevisions !== undefined && { keepRevisions }),
              signal: ctx.signal,
            })
          : undefined;
      if (pinName !== undefined && !pin)
        ctx.stderr.write(`nixcache: push: not pinned as ${pinName}: some paths failed\n`);
      if (pin && !json)
        await writeLine(
          ctx.stdout,
          `pinned ${paths.length} paths as ${pin.name} (${pin.revisions.length} revisions kept)`,
        );
      if (json) {
        await writeJson(ctx.stdout, {
          pushed: result.pushed,
          skipped: result.skipped,
          upstream: result.servedElsewhere,
          ...(upstreams?.unavailable !== undefined && { upstreamUnavailable: upstreams.unavailable }),
          failed: result.failed.map((f) => ({ path: f.path, ...errorJson(f.error) })),
          ...(pin && { pin }),
        });
      } else {
        const signed = keys.length ? ` signed by ${keys.map((k) => k.name).join(', ')}` : ' unsigned';
        await writeLine(
          ctx.stdout,
          `pushed ${result.pushed.length} paths to ${store.location}${result.pushed.length ? signed : ''}, ` +
            `skipped ${result.skipped.length} already there${upstreams ? `, ${result.servedElsewhere.length} served upstream` : ''}, ${result.failed.length} failed`,
        );
      }
      return result.failed.length ? EXIT.problems : EXIT.ok;
    } finally {
      await upstreams?.close();
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { push };
