/**
 * `nixcache sign --store URL --key-file FILE [--all | PATH...]`: the `nix store sign --store URL`
 * of nixcache. Adds a signature to narinfos already in the cache; on S3 each narinfo is rewritten
 * only if unchanged since it was read, so concurrent signers never drop each other's signature.
 * Exit 1 when a path is missing or failed.
 */
import { ResumeLog } from '../../cache/resume.js';
import { parseShard } from '../../cache/shard.js';
import { addSignatures, type SignRecord } from '../../cache/sign.js';
import { closeAll, errorJson, loadSecretKeys, openCliStore, preflight } from '../common.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { lookupInCache, resolveStorePaths } from '../paths.js';
import type { Command } from '../run.js';

const sign: Command = {
  spec: {
    name: 'sign',
    summary: 'add signatures to narinfos already in a binary cache',
    usage: ['--store URL --key-file FILE... [--json] [--shard I/N] [--resume FILE] (--all | PATH...)'],
    details: [
      '--json prints NDJSON, one line per narinfo as it is done: {"hashPart","path","status"} with status signed, unchanged (it already had this signature), missing or failed (then also "error":{"code","message"}), and last {"summary":{"signed","unchanged","missing","failed"},"ok":BOOL}. Human output prints missing and failed paths as they come, then the counts. Exit 1 when any path is missing or failed.',
      '--shard I/N signs only part I of N of the paths (a fixed partition by hash part), so N machines can split one cache. --resume FILE logs each outcome to FILE (NDJSON, the lines of --json); when FILE exists, the paths it holds are skipped and counted, so an interrupted run continues where it stopped. Memory stays flat whatever the size of the cache.',
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
      parallelism: { type: 'string', value: 'N', help: 'narinfos signed at once (default 16)' },
      shard: { type: 'string', value: 'I/N', help: 'sign only shard I of N (split by hash part)' },
      resume: {
        type: 'string',
        value: 'FILE',
        help: 'log outcomes to FILE and skip the paths it already holds',
      },
      json: { type: 'boolean', help: 'print NDJSON: one line per narinfo, the summary last' },
    },
    examples: [
      "nixcache sign --store 's3://nix-cache?endpoint=s3.homelab.local' --key-file /etc/nix/cache.secret --all",
      'nixcache sign --store file:///srv/cache --key-file second.secret /nix/store/…-hello-2.12',
      "nixcache sign --store 's3://nix-cache' --key-file cache.secret --all --shard 2/4 --resume sign-2.ndjson",
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
    const shardText = args.string('shard');
    let shard: ReturnType<typeof parseShard> | undefined;
    try {
      shard = shardText === undefined ? undefined : parseShard(shardText);
    } catch (e) {
      throw new UsageError(`--shard: ${(e as Error).message}`, 'sign');
    }
    const resumeFile = args.string('resume');
    const json = args.flag('json');
    const keys = await loadSecretKeys(files, 'sign');
    const store = await openCliStore(url, ctx, 'store', 'sign');
    let resume: ResumeLog<SignRecord> | undefined;
    try {
      await preflight(store, ctx);
      const paths = all
        ? 'all'
        : await resolveStorePaths(args.positionals, store.storeDir, 'sign', lookupInCache(store, ctx.signal));
      const previous = { signed: 0, unchanged: 0, missing: 0, failed: 0 };
      if (resumeFile !== undefined) {
        resume = await ResumeLog.open<SignRecord>(resumeFile, {
          onPrevious: (r) => {
            if (r.status in previous) previous[r.status]++;
          },
        });
      }
      const result = await addSignatures(store, paths, keys, {
        ...(parallelism !== undefined && { parallelism }),
        ...(shard && { shard }),
        ...(resume && { resume, previous }),
        signal: ctx.signal,
        async onProgress(event) {
          if (ctx.signal.aborted) return;
          const error = event.error && errorJson(event.error);
          if (json) {
            await writeJson(ctx.stdout, {
              hashPart: event.hashPart,
              path: event.path,
              status: event.status,
              ...(error && { error }),
            });
          } else if (event.status === 'missing') {
            await writeLine(ctx.stdout, `missing     ${event.path}: no narinfo in the cache`);
          } else if (event.status === 'failed') {
            await writeLine(ctx.stdout, `failed      ${event.path}: ${error?.message}`);
          }
        },
      });
      if (ctx.signal.aborted) return EXIT.interrupted;
      const ok = result.missing === 0 && result.failed === 0;
      if (json) {
        await writeJson(ctx.stdout, { summary: result, ok });
      } else {
        await writeLine(
          ctx.stdout,
          `signed ${result.signed} narinfos in ${store.location}${shard ? ` (shard ${shard.index}/${shard.count})` : ''} with ${keys.map((k) => k.name).join(', ')}; ` +
            `${result.unchanged} already signed, ${result.missing} missing, ${result.failed} failed`,
        );
      }
      return ok ? EXIT.ok : EXIT.problems;
    } finally {
      resume?.close();
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { sign };
