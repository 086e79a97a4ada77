/**
 * `nixcache sign --store URL --key-file FILE [--all | PATH...]`: the `nix store sign --store URL`
 * of nixcache. Adds a signature to narinfos already in the cache; on S3 each narinfo is rewritten
 * only if unchanged since it was read, so concurrent signers never drop each other's signature.
 * Exit 1 when a path is missing or failed.
 */
import { addSignatures } from '../../cache/sign.js';
import { closeAll, errorJson, loadSecretKeys, openCliStore, preflight } from '../common.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { lookupInCache, resolveStorePaths } from '../paths.js';
import type { Command } from '../run.js';

const sign: Command = {
  spec: {
    name: 'sign',
    summary: 'add signatures to narinfos already in a binary cache',
    usage: ['--store URL --key-file FILE... [--json] (--all | PATH...)'],
    details: [
      '--json prints {"signed":[PATH…],"unchanged":[PATH…],"missing":[PATH…],"failed":[{"path","code","message"}]}; unchanged means the narinfo already had this signature. Exit 1 when any path is missing or failed.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache (required)' },
      'key-file': {
        type: 'string',
        multiple: true,
        value: 'FILE',
        help: 'secret key file to sign with (required)',
        aliases: ['secret-key-file'],
      },
      all: { type: 'boolean', help: 'sign every narinfo in the cache (s3:// or file://)' },
      parallelism: { type: 'string', value: 'N', help: 'narinfos signed at once (default 8)' },
      json: { type: 'boolean', help: 'print the result as JSON' },
    },
    examples: [
      "nixcache sign --store 's3://nix-cache?endpoint=s3.homelab.local' --key-file /etc/nix/cache.secret --all",
      'nixcache sign --store file:///srv/cache --key-file second.secret /nix/store/…-hello-2.12',
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const files = args.strings('key-file');
    if (files.length === 0) throw new UsageError('missing --key-file', 'sign');
    const all = args.flag('all');
    if (all && args.positionals.length) throw new UsageError('give either --all or paths, not both', 'sign');
    if (!all && !args.positionals.length) throw new UsageError('give the paths to sign, or --all', 'sign');
    const parallelism = args.integer('parallelism', 1, 256);
    const keys = await loadSecretKeys(files, 'sign');
    const store = await openCliStore(url, ctx, 'store', 'sign');
    try {
      await preflight(store, ctx);
      const paths = all
        ? 'all'
        : await resolveStorePaths(args.positionals, store.storeDir, 'sign', lookupInCache(store, ctx.signal));
      const result = await addSignatures(store, paths, keys, {
        ...(parallelism !== undefined && { parallelism }),
        signal: ctx.signal,
      });
      if (ctx.signal.aborted) return EXIT.interrupted;
      if (args.flag('json')) {
        await writeJson(ctx.stdout, {
          signed: result.signed,
          unchanged: result.unchanged,
          missing: result.missing,
          failed: result.failed.map((f) => ({ path: f.path, ...errorJson(f.error) })),
        });
      } else {
        const lines = [
          ...result.missing.map((p) => `missing     ${p}: no narinfo in the cache`),
          ...result.failed.map((f) => `failed      ${f.path}: ${errorJson(f.error).message}`),
          `signed ${result.signed.length} narinfos in ${store.location} with ${keys.map((k) => k.name).join(', ')}; ` +
            `${result.unchanged.length} already signed, ${result.missing.length} missing, ${result.failed.length} failed`,
        ];
        await writeLine(ctx.stdout, lines.join('\n'));
      }
      return result.missing.length || result.failed.length ? EXIT.problems : EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { sign };
