/**
 * `nixcache copy --from URL --to URL PATH...`: the `nix copy --from A --to B` of nixcache. Every
 * NAR is verified on the way, recompressed as the target URL says, optionally checked against
 * trusted keys and re-signed; narinfos are written references first. Exit 1 when any path failed.
 */
import { copyPaths } from '../../cache/copy.js';
import type { StorageBackend } from '../../store/backend.js';
import { BinaryCacheStore } from '../../store/binary-cache.js';
import { closeAll, errorJson, loadSecretKeys, openCliStore, parseTrustedKeys } from '../common.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { lookupInCache, resolveStorePaths } from '../paths.js';
import { Progress, type ProgressState, wantProgress } from '../progress.js';
import type { Command } from '../run.js';

/** The same store, counting the bytes read from it (for the progress line). */
function counting(store: BinaryCacheStore, state: ProgressState): BinaryCacheStore {
  const backend = store.backend;
  const get: StorageBackend['get'] = async (key, options) => {
    const object = await backend.get(key, options);
    if (!object) return object;
    const body = object.body;
    return {
      ...object,
      body: (async function* () {
        for await (const chunk of body) {
          state.bytes += chunk.length;
          yield chunk;
        }
      })(),
    };
  };
  // A proxy, not a subclass: backends keep private fields, so their methods run on the original.
  const wrapped = new Proxy(backend, {
    get(target, prop) {
      if (prop === 'get') return get;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new BinaryCacheStore(store.config, wrapped);
}

const copy: Command = {
  spec: {
    name: 'copy',
    summary: 'copy store paths and their closures from one binary cache to another',
    usage: [
      '--from URL --to URL [--trusted-public-key KEY]... [--secret-key-file FILE]... [--no-closure] [--json] PATH...',
    ],
    details: [
      'Each NAR is downloaded, checked against its narinfo (NarHash, NarSize and the CA hash of a content-addressed path), recompressed with the target compression and uploaded; the narinfo keeps its signatures and gets new ones from --secret-key-file and the secret-key(s) of the target URL. With --trusted-public-key, paths not signed by one of those keys (and whose CA claim the contents do not prove) are refused. Only trusted paths are re-signed: with a signing key, a path must be signed by a --trusted-public-key or by the signing key itself, or be content-addressed.',
      'Nothing is written for a path that cannot be copied: references are read first and a reference cycle fails the paths on it. nix-cache-info is written when the target has none. With --force, signatures the target already has for the same NAR are kept.',
      '--json prints {"copied":[PATH…],"skipped":[PATH…],"failed":[{"path","code","message"}]}. Exit 1 when any path failed.',
    ],
    options: {
      from: { type: 'string', value: 'URL', help: 'the cache to read (required)' },
      to: { type: 'string', value: 'URL', help: 'the cache to write (required)' },
      'trusted-public-key': {
        type: 'string',
        short: 'k',
        multiple: true,
        value: 'KEY',
        help: 'refuse paths that no such key signed',
        aliases: ['trusted-public-keys'],
      },
      'secret-key-file': {
        type: 'string',
        multiple: true,
        value: 'FILE',
        help: 'add a signature with the key in FILE',
        aliases: ['key-file'],
      },
      'no-check-sigs': {
        type: 'boolean',
        help: 'do not check signatures, even with --trusted-public-key (as `nix copy --no-check-sigs`)',
      },
      'no-closure': {
        type: 'boolean',
        help: 'copy only the given paths (their references must be in the target)',
      },
      parallelism: { type: 'string', value: 'N', help: 'paths copied at once (default 2)' },
      force: { type: 'boolean', help: 'copy even paths the target already has' },
      json: { type: 'boolean', help: 'print the result as JSON (no progress bar)' },
      verbose: { type: 'boolean', short: 'v', help: 'print a line per path on stderr' },
    },
    positionals: { min: 1, name: 'PATH' },
    examples: [
      "nixcache copy --from https://cache.nixos.org --to 's3://nix-cache?endpoint=s3.homelab.local' -k cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= /nix/store/…-hello-2.12",
      "nixcache copy --from file:///srv/old-cache --to 'file:///srv/new-cache?compression=zstd' /nix/store/…-app",
    ],
  },
  async run(args, ctx) {
    const fromUrl = args.required('from');
    const toUrl = args.required('to');
    const trusted = args.flag('no-check-sigs')
      ? []
      : parseTrustedKeys(args.strings('trusted-public-key'), 'copy');
    const parallelism = args.integer('parallelism', 1, 64);
    const json = args.flag('json');
    const verbose = args.flag('verbose');
    const from = await openCliStore(fromUrl, ctx, 'from', 'copy');
    let to: BinaryCacheStore | undefined;
    try {
      to = await openCliStore(toUrl, ctx, 'to', 'copy');
      const keys = await loadSecretKeys(
        [...args.strings('secret-key-file'), ...to.config.secretKeyFiles],
        'copy',
      );
      if (from.storeDir !== to.storeDir) {
        throw new UsageError(
          `the caches have different store directories (${from.storeDir}, ${to.storeDir})`,
          'copy',
        );
      }
      const paths = await resolveStorePaths(
        args.positionals,
        from.storeDir,
        'copy',
        lookupInCache(from, ctx.signal),
      );
      const progress = new Progress(ctx.stderr, 'copy', wantProgress(ctx.stderr, json, ctx.env));
      const s = progress.state;
      s.total = paths.length;
      let result: Awaited<ReturnType<typeof copyPaths>>;
      try {
        result = await copyPaths(progress.enabled ? counting(from, s) : from, to, paths, {
          ...(trusted.length && { trustedKeys: trusted }),
          secretKeys: keys,
          ...(args.flag('no-closure') && { closure: false }),
          ...(parallelism !== undefined && { parallelism }),
          ...(args.flag('force') && { force: true }),
          signal: ctx.signal,
          onProgress(event) {
            s.done++;
            s.total = Math.max(s.total, s.done);
            if (event.type === 'skip') s.skipped++;
            if (event.type === 'failed') {
              s.failed++;
              if (!json && !ctx.signal.aborted)
                progress.log(`nixcache: failed: ${errorJson(event.error).message}`);
            } else if (verbose) progress.log(`${event.type === 'skip' ? 'skipped' : 'copied'} ${event.path}`);
          },
        });
      } finally {
        progress.finish();
      }
      if (ctx.signal.aborted) return EXIT.interrupted;
      if (json) {
        await writeJson(ctx.stdout, {
          copied: result.pushed,
          skipped: result.skipped,
          failed: result.failed.map((f) => ({ path: f.path, ...errorJson(f.error) })),
        });
      } else {
        await writeLine(
          ctx.stdout,
          `copied ${result.pushed.length} paths from ${from.location} to ${to.location}, ` +
            `skipped ${result.skipped.length} already there, ${result.failed.length} failed`,
        );
      }
      return result.failed.length ? EXIT.problems : EXIT.ok;
    } finally {
      await closeAll(from, to);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { copy };
