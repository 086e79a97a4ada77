/**
 * `nixcache sign --store URL --key-file FILE [--all | PATH...]`: the `nix store sign --store URL`
 * of nixcache. Adds a signature to narinfos already in the cache; on S3 each narinfo is rewritten
 * only if unchanged since it was read, so concurrent signers never drop each other's signature.
 * `--remove-key NAME` is the other half of a key rotation: it removes a retired key's signatures
 * with the same conditional writes, refusing to leave a narinfo with no signature that a
 * `--trusted-public-key` accepts unless `--force`. Exit 1 when a path is missing, refused or failed.
 */

import { removeSignatures } from '../../cache/remove-signatures.js';
import { ResumeLog } from '../../cache/resume.js';
import { parseShard } from '../../cache/shard.js';
import { addSignatures, type SignRecord } from '../../cache/sign.js';
import type { ParsedArgs } from '../args.js';
import { closeAll, errorJson, loadSecretKeys, openCliStore, parseTrustedKeys, preflight } from '../common.js';
import type { CliContext } from '../context.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { lookupInCache, resolveStorePaths } from '../paths.js';
import type { Command } from '../run.js';

const sign: Command = {
  spec: {
    name: 'sign',
    summary: 'add signatures to narinfos already in a binary cache, or remove those of a retired key',
    usage: [
      '--store URL --key-file FILE... [--json] [--shard I/N] [--resume FILE] (--all | PATH...)',
      '--store URL --remove-key NAME... (--trusted-public-key KEY... | --force) [--json] (--all | PATH...)',
    ],
    details: [
      '--json prints NDJSON, one line per narinfo as it is done: {"hashPart","path","status"} with status signed, unchanged (it already had this signature), missing or failed (then also "error":{"code","message"}), and last {"summary":{"signed","unchanged","missing","failed"},"ok":BOOL}. Human output prints missing and failed paths as they come, then the counts. Exit 1 when any path is missing or failed.',
      '--shard I/N signs only part I of N of the paths (a fixed partition by hash part), so N machines can split one cache. --resume FILE logs each outcome to FILE (NDJSON, the lines of --json); when FILE exists, the paths it holds are skipped and counted, so an interrupted run continues where it stopped. Memory stays flat whatever the size of the cache.',
      'Key rotation: sign --all with the new key, deploy the new public key to every client, then --remove-key OLD-NAME --trusted-public-key NEW-PUBLIC-KEY --all. A narinfo that would be left with no signature a --trusted-public-key accepts is refused (left as it is) unless --force. With --remove-key, --json prints {"removed":[PATH…],"unchanged":[PATH…],"missing":[PATH…],"refused":[{"path","reason"}],"failed":[{"path","code","message"}]}. Exit 1 when any path is missing, refused or failed.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache (required)' },
      'key-file': {
        type: 'string',
        multiple: true,
        value: 'FILE',
        help: 'secret key file to sign with (required unless --remove-key)',
        aliases: ['secret-key-file'],
      },
      'remove-key': {
        type: 'string',
        multiple: true,
        value: 'NAME',
        help: 'remove the signatures of the key with this name (a retired key)',
      },
      'trusted-public-key': {
        type: 'string',
        short: 'k',
        multiple: true,
        value: 'KEY',
        help: 'with --remove-key: a key clients trust; every narinfo must keep a signature one of them accepts',
        aliases: ['trusted-public-keys'],
      },
      force: {
        type: 'boolean',
        help: 'with --remove-key: remove even when no trusted signature would remain',
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
      "nixcache sign --store 's3://nix-cache?endpoint=s3.homelab.local' --remove-key cache-1 -k cache-2:…= --all",
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const files = args.strings('key-file');
    if (args.strings('remove-key').length > 0) {
      if (files.length) throw new UsageError('give either --key-file or --remove-key, not both', 'sign');
      return removeKeys(url, args, ctx);
    }
    if (args.strings('trusted-public-key').length || args.flag('force'))
      throw new UsageError('--trusted-public-key and --force go with --remove-key', 'sign');
    if (files.length === 0) throw new UsageError('missing --key-file (or --remove-key)', 'sign');
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

/** `sign --remove-key NAME…`: the last step of a key rotation. */
async function removeKeys(url: string, args: ParsedArgs, ctx: CliContext): Promise<number> {
  const names = args.strings('remove-key');
  for (const name of names) {
    if (!/^[^\s:]+$/.test(name)) {
      throw new UsageError(
        `--remove-key: ${JSON.stringify(name)} is not a key name (the part before ':')`,
        'sign',
      );
    }
  }
  const trusted = parseTrustedKeys(args.strings('trusted-public-key'), 'sign');
  const force = args.flag('force');
  if (trusted.length === 0 && !force) {
    throw new UsageError(
      '--remove-key needs --trusted-public-key (the keys clients trust after the rotation), or --force',
      'sign',
    );
  }
  const stillTrusted = trusted.filter((k) => names.includes(k.name));
  if (stillTrusted.length) {
    throw new UsageError(`--remove-key ${stillTrusted[0]!.name} is also a --trusted-public-key`, 'sign');
  }
  const all = args.flag('all');
  if (all && args.positionals.length) throw new UsageError('give either --all or paths, not both', 'sign');
  if (!all && !args.positionals.length) throw new UsageError('give the paths to change, or --all', 'sign');
  const parallelism = args.integer('parallelism', 1, 256);
  const store = await openCliStore(url, ctx, 'store', 'sign');
  try {
    await preflight(store, ctx);
    const paths = all
      ? 'all'
      : await resolveStorePaths(args.positionals, store.storeDir, 'sign', lookupInCache(store, ctx.signal));
    const result = await removeSignatures(store, paths, names, {
      ...(trusted.length && { trustedKeys: trusted }),
      force,
      ...(parallelism !== undefined && { parallelism }),
      signal: ctx.signal,
    });
    if (ctx.signal.aborted) return EXIT.interrupted;
    if (args.flag('json')) {
      await writeJson(ctx.stdout, {
        removed: result.removed,
        unchanged: result.unchanged,
        missing: result.missing,
        refused: result.refused,
        failed: result.failed.map((f) => ({ path: f.path, ...errorJson(f.error) })),
      });
    } else {
      const lines = [
        ...result.missing.map((p) => `missing     ${p}: no narinfo in the cache`),
        ...result.refused.map((r) => `refused     ${r.path}: ${r.reason}`),
        ...result.failed.map((f) => `failed      ${f.path}: ${errorJson(f.error).message}`),
        `removed the signatures of ${names.join(', ')} from ${result.removed.length} narinfos in ${store.location}; ` +
          `${result.unchanged.length} had none, ${result.refused.length} refused, ${result.missing.length} missing, ${result.failed.length} failed`,
      ];
      await writeLine(ctx.stdout, lines.join('\n'));
    }
    return result.missing.length || result.refused.length || result.failed.length ? EXIT.problems : EXIT.ok;
  } finally {
    await closeAll(store);
  }
}

export const commands: Readonly<Record<string, Command>> = { sign };
