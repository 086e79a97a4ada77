/**
 * `nixcache sign --store URL --key-file FILE [--all | PATH...]`: the `nix store sign --store URL`
 * of nixcache. Adds a signature to narinfos already in the cache; on S3 each narinfo is rewritten
 * only if unchanged since it was read, so concurrent signers never drop each other's signature.
 * `--remove-key NAME` is the other half of a key rotation: it removes a retired key's signatures
 * with the same conditional writes, refusing to leave a narinfo with no signature that a
 * `--trusted-public-key` accepts unless `--force`. Exit 1 when a path is missing, refused or failed.
 */
import { removeSignatures } from '../../cache/remove-signatures.js';
import { addSignatures } from '../../cache/sign.js';
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
      '--store URL --key-file FILE... [--json] (--all | PATH...)',
      '--store URL --remove-key NAME... (--trusted-public-key KEY... | --force) [--json] (--all | PATH...)',
    ],
    details: [
      '--json prints {"signed":[PATH…],"unchanged":[PATH…],"missing":[PATH…],"failed":[{"path","code","message"}]}; unchanged means the narinfo already had this signature. Exit 1 when any path is missing or failed.',
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
      parallelism: { type: 'string', value: 'N', help: 'narinfos signed at once (default 8)' },
      json: { type: 'boolean', help: 'print the result as JSON' },
    },
    examples: [
      "nixcache sign --store 's3://nix-cache?endpoint=s3.homelab.local' --key-file /etc/nix/cache.secret --all",
      'nixcache sign --store file:///srv/cache --key-file second.secret /nix/store/…-hello-2.12',
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
