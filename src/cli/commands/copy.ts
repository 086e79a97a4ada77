/**
 * `nixcache copy --from URL --to URL PATH...`: the `nix copy --from A --to B` of nixcache. Every
 * NAR is verified on the way, recompressed as the target URL says, optionally checked against
 * trusted keys and re-signed; narinfos are written references first. Exit 1 when any path failed.
 */
import { type CopyAllRecord, copyAll, copyPaths } from '../../cache/copy.js';
import { ResumeLog } from '../../cache/resume.js';
import { parseShard } from '../../cache/shard.js';
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

/** `copy --all`: the streaming whole-cache copy. */
async function runAll(
  from: BinaryCacheStore,
  to: BinaryCacheStore,
  o: {
    ctx: Parameters<Command['run']>[1];
    json: boolean;
    verbose: boolean;
    shard?: ReturnType<typeof parseShard>;
    resumeFile?: string;
    parallelism?: number;
    trusted: ReturnType<typeof parseTrustedKeys>;
    keys: Awaited<ReturnType<typeof loadSecretKeys>>;
    force: boolean;
  },
): Promise<number> {
  const { ctx, json } = o;
  const previous = { copied: 0, skipped: 0, failed: 0 };
  const resume =
    o.resumeFile === undefined
      ? undefined
      : await ResumeLog.open<CopyAllRecord>(o.resumeFile, {
          onPrevious: (r) => {
            if (r.status in previous) previous[r.status]++;
          },
        });
  const progress = new Progress(ctx.stderr, 'copy', wantProgress(ctx.stderr, json, ctx.env));
  const s = progress.state;
  s.done = s.total = previous.copied + previous.skipped + previous.failed;
  let result: Awaited<ReturnType<typeof copyAll>>;
  try {
    result = await copyAll(progress.enabled ? counting(from, s) : from, to, {
      ...(o.trusted.length && { trustedKeys: o.trusted }),
      secretKeys: o.keys,
      ...(o.parallelism !== undefined && { parallelism: o.parallelism }),
      ...(o.force && { force: true }),
      ...(o.shard && { shard: o.shard }),
      ...(resume && { resume, previous }),
      signal: ctx.signal,
      async onPath(record) {
        s.done++;
        s.total = Math.max(s.total, s.done);
        if (record.status === 'skipped') s.skipped++;
        if (record.status === 'failed') s.failed++;
        if (ctx.signal.aborted) return;
        const error = record.error && {
          ...record.error,
          message: errorJson(new Error(record.error.message)).message,
        };
        if (json) await writeJson(ctx.stdout, { ...record, ...(error && { error }) });
        else if (record.status === 'failed')
          progress.log(`nixcache: failed: ${record.path}: ${error?.message}`);
        else if (o.verbose) progress.log(`${record.status} ${record.path}`);
      },
    });
  } finally {
    progress.finish();
    resume?.close();
  }
  if (ctx.signal.aborted) return EXIT.interrupted;
  const ok = result.failed === 0;
  if (json) await writeJson(ctx.stdout, { summary: result, ok });
  else {
    const part = o.shard ? ` (shard ${o.shard.index}/${o.shard.count})` : '';
    await writeLine(
      ctx.stdout,
      `copied ${result.copied} paths from ${from.location} to ${to.location}${part} ` +
        `(${result.written} written with their references), ` +
        `skipped ${result.skipped} already there when their turn came, ${result.failed} failed`,
    );
  }
  return ok ? EXIT.ok : EXIT.problems;
}

const copy: Command = {
  spec: {
    name: 'copy',
    summary: 'copy store paths and their closures from one binary cache to another',
    usage: [
      '--from URL --to URL [--trusted-public-key KEY]... [--secret-key-file FILE]... [--no-closure] [--json] PATH...',
      '--from URL --to URL [--trusted-public-key KEY]... [--secret-key-file FILE]... [--json] [--shard I/N] [--resume FILE] --all',
    ],
    details: [
      'Each NAR is downloaded, checked against its narinfo (NarHash, NarSize and the CA hash of a content-addressed path), recompressed with the target compression and uploaded; the narinfo keeps its signatures and gets new ones from --secret-key-file and the secret-key(s) of the target URL. With --trusted-public-key, paths not signed by one of those keys (and whose CA claim the contents do not prove) are refused. Only trusted paths are re-signed: with a signing key, a path must be signed by a --trusted-public-key or by the signing key itself, or be content-addressed.',
      'Nothing is written for a path that cannot be copied: references are read first and a reference cycle fails the paths on it. nix-cache-info is written when the target has none. With --force, signatures the target already has for the same NAR are kept.',
      '--json prints {"copied":[PATH…],"skipped":[PATH…],"failed":[{"path","code","message"}]}. Exit 1 when any path failed.',
      '--all copies every path of the source, streaming its listing (memory does not grow with the cache): each listed path with its closure, references first. With --all, --json prints NDJSON, one line per listed path as it is done, {"hashPart","path","status"} with status copied, skipped or failed (then also "error":{"code","message"}), and last {"summary":{"copied","skipped","failed"},"ok":BOOL}. --shard I/N copies only part I of N of the listed paths (a fixed partition by hash part); --resume FILE logs each outcome to FILE and, when FILE exists, skips the paths it holds, so an interrupted copy continues where it stopped.',
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
      all: { type: 'boolean', help: 'copy every path of the source (s3:// or file://)' },
      shard: { type: 'string', value: 'I/N', help: 'with --all: copy only shard I of N (by hash part)' },
      resume: {
        type: 'string',
        value: 'FILE',
        help: 'with --all: log outcomes to FILE and skip the paths it already holds',
      },
      json: { type: 'boolean', help: 'print the result as JSON (no progress bar)' },
      verbose: { type: 'boolean', short: 'v', help: 'print a line per path on stderr' },
    },
    positionals: { name: 'PATH' },
    examples: [
      "nixcache copy --from https://cache.nixos.org --to 's3://nix-cache?endpoint=s3.homelab.local' -k cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= /nix/store/…-hello-2.12",
      "nixcache copy --from file:///srv/old-cache --to 'file:///srv/new-cache?compression=zstd' /nix/store/…-app",
      "nixcache copy --from 's3://old-cache' --to 's3://new-cache' -k old-1:…= --all --shard 1/4 --resume copy-1.ndjson",
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
    const all = args.flag('all');
    if (all && args.positionals.length) throw new UsageError('give either --all or paths, not both', 'copy');
    if (!all && !args.positionals.length) throw new UsageError('missing PATH (or --all)', 'copy');
    if (!all && (args.string('shard') !== undefined || args.string('resume') !== undefined))
      throw new UsageError('--shard and --resume go with --all', 'copy');
    let shard: ReturnType<typeof parseShard> | undefined;
    try {
      const text = args.string('shard');
      shard = text === undefined ? undefined : parseShard(text);
    } catch (e) {
      throw new UsageError(`--shard: ${(e as Error).message}`, 'copy');
    }
    const resumeFile = args.string('resume');
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
      if (all) {
        if (args.flag('no-closure')) throw new UsageError('--all copies closures; drop --no-closure', 'copy');
        return await runAll(from, to, {
          ctx,
          json,
          verbose,
          ...(shard && { shard }),
          ...(resumeFile !== undefined && { resumeFile }),
          ...(parallelism !== undefined && { parallelism }),
          trusted,
          keys,
          force: args.flag('force'),
        });
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
