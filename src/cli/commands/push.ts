/**
 * `nixcache push --to URL PATH...`: the `nix copy --to` of nixcache. Reads the paths (and by
 * default their closures) from a local store directory, signs them with the keys named by
 * `--secret-key-file` and the URL's `secret-key(s)`, and uploads NARs first and narinfos last.
 * Exit 1 when any path failed. Ctrl-C aborts without leaving a narinfo behind.
 */
import { stat } from 'node:fs/promises';
import { addPinRevision, checkPinName } from '../../cache/pins.js';
import type { PathMetadata } from '../../cache/push.js';
import { pushPaths } from '../../cache/push.js';
import { NixcacheError } from '../../errors.js';
import { closeAll, errorJson, loadSecretKeys, openCliStore, readInputText } from '../common.js';
import { type CliContext, EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { resolveStorePaths } from '../paths.js';
import { Progress, wantProgress } from '../progress.js';
import type { Command } from '../run.js';

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
      'Like `nix copy --to URL PATH...` without Nix: each path is read from the store directory (default /nix/store; any directory laid out like a store works), its NAR is built, compressed as the URL says (compression=xz by default) and uploaded; the narinfo is written last, after the narinfos of its references. Paths already in the cache are skipped. References are found by scanning the NARs, unless --metadata gives them.',
      'Signing keys come from --secret-key-file and from the URL parameters secret-key/secret-keys (file names, as in Nix). Without any key the narinfos are unsigned (only content-addressed paths are then trusted by Nix).',
      '--json prints {"pushed":[PATH…],"skipped":[PATH…],"failed":[{"path","code","message"}]}. Exit 1 when any path failed.',
    ],
    options: {
      to: { type: 'string', value: 'URL', help: 'the cache to push to (required)' },
      'secret-key-file': {
        type: 'string',
        multiple: true,
        value: 'FILE',
        help: 'sign with the secret key in FILE',
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
      parallelism: { type: 'string', value: 'N', help: 'paths compressed and uploaded at once (default 2)' },
      force: { type: 'boolean', help: 'upload even paths the cache already has' },
      json: { type: 'boolean', help: 'print the result as JSON (no progress bar)' },
      verbose: { type: 'boolean', short: 'v', help: 'print a line per path on stderr' },
      pin: {
        type: 'string',
        value: 'NAME',
        help: 'make the given paths the newest revision of pin NAME once all are in the cache (see nixcache pin)',
      },
      'keep-revisions': { type: 'string', value: 'K', help: 'with --pin: revisions the pin keeps' },
    },
    positionals: { min: 1, name: 'PATH' },
    examples: [
      "nixcache push --to 's3://nix-cache?profile=nixbuilder&endpoint=s3.homelab.local' --secret-key-file /etc/nix/cache.secret ./result",
      "nixcache push --to 's3://nix-cache?secret-key=/etc/nix/cache.secret&compression=zstd' $(nix-store -qR ./result)",
      'nix path-info --json --recursive ./result > meta.json && nixcache push --to file:///srv/cache --metadata meta.json ./result',
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
    try {
      const keys = await loadSecretKeys(
        [...args.strings('secret-key-file'), ...store.config.secretKeyFiles],
        'push',
      );
      const metadataFile = args.string('metadata');
      const metadata = metadataFile === undefined ? undefined : await readMetadata(metadataFile, ctx);
      const paths = await resolveStorePaths(args.positionals, store.storeDir, 'push');
      const storeDir = args.string('store-dir') ?? '/nix/store';
      const dirStat = await stat(storeDir).catch(() => undefined);
      if (!dirStat?.isDirectory()) {
        throw new NixcacheError('IO', `store directory '${storeDir}' does not exist or is not a directory`, {
          file: storeDir,
        });
      }
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
              case 'bytes':
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
          failed: result.failed.map((f) => ({ path: f.path, ...errorJson(f.error) })),
          ...(pin && { pin }),
        });
      } else {
        const signed = keys.length ? ` signed by ${keys.map((k) => k.name).join(', ')}` : ' unsigned';
        await writeLine(
          ctx.stdout,
          `pushed ${result.pushed.length} paths to ${store.location}${result.pushed.length ? signed : ''}, ` +
            `skipped ${result.skipped.length} already there, ${result.failed.length} failed`,
        );
      }
      return result.failed.length ? EXIT.problems : EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { push };
