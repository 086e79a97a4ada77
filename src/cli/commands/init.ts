/**
 * `nixcache init --store URL`: the seed's bucket set-up in one command — create the bucket (S3),
 * write `nix-cache-info` (StoreDir, WantMassQuery, Priority), and optionally allow anonymous
 * downloads (bucket policy) and expire objects after N days (lifecycle rule).
 */
import { initCache } from '../../cache/init.js';
import { closeAll, openCliStore } from '../common.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import type { Command } from '../run.js';
import { emitWriterPolicy, writerPolicyJson, writerPolicyLines } from '../writer-policy.js';

/** Why --expire-days is a poor way to bound a cache, and what to use instead. */
const EXPIRY_WARNING =
  '--expire-days deletes every object N days after its upload, whether or not a closure still needs it: ' +
  'a narinfo can outlive its NAR or its references (NixOS/nix#8080) and substitution then fails halfway. ' +
  "Prefer 'nixcache gc' (with 'nixcache pin' or 'push --pin'), run from cron, which deletes only what no kept closure needs.";

const init: Command = {
  spec: {
    name: 'init',
    summary: 'create a binary cache: bucket, nix-cache-info, anonymous read, expiry',
    usage: [
      '--store URL [--priority N] [--want-mass-query] [--public-read] [--expire-days N] [--json]',
      '--store s3://BUCKET[/PREFIX] --writer-policy-out FILE [--writer NAME] [--writer-gc] [...]',
    ],
    details: [
      'Safe to run again: nix-cache-info keeps the settings not given on the command line (and lines nixcache does not know), and only its own policy statement and lifecycle rule are replaced. A cache whose nix-cache-info names another StoreDir is refused.',
      '--public-read and --expire-days need an s3:// store on a server with bucket policies and lifecycle rules (AWS S3, MinIO); on others the error says which feature is missing. nix-cache-info is written before the policies are set.',
    ],
    options: {
      store: {
        type: 'string',
        value: 'URL',
        help: 'the cache, e.g. s3://nix-cache?endpoint=minio.example.org (required)',
      },
      priority: {
        type: 'string',
        value: 'N',
        help: 'substituter priority written to nix-cache-info (lower wins; cache.nixos.org is 40)',
      },
      'want-mass-query': {
        type: 'boolean',
        help: 'write WantMassQuery: 1 (Nix may query many paths at once)',
      },
      'no-want-mass-query': { type: 'boolean', help: 'write WantMassQuery: 0' },
      'public-read': {
        type: 'boolean',
        help: 'let anyone download (S3 bucket policy: anonymous s3:GetObject)',
      },
      'expire-days': {
        type: 'string',
        value: 'N',
        help: 'delete objects N days after upload (S3 lifecycle rule; breaks closures: prefer nixcache gc)',
      },
      'writer-policy-out': {
        type: 'string',
        value: 'FILE',
        help: 'write the IAM policy a pushing user needs to FILE and print the mc admin / aws iam commands that attach it',
      },
      writer: {
        type: 'string',
        value: 'NAME',
        help: 'with --writer-policy-out: the user to attach it to (default nixcache-writer)',
      },
      'writer-gc': {
        type: 'boolean',
        help: 'with --writer-policy-out: also allow s3:DeleteObject (garbage collection)',
      },
      json: { type: 'boolean', help: 'print the result as JSON' },
    },
    positionals: { max: 0 },
    examples: [
      "nixcache init --store 's3://nix-cache?profile=nixbuilder&endpoint=s3.homelab.local' --public-read --expire-days 30",
      'nixcache init --store file:///srv/nix-cache --priority 30 --want-mass-query',
      "nixcache init --store 's3://nix-cache/ci?endpoint=s3.homelab.local' --writer-policy-out writer.json --writer ci-pusher",
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const priority = args.integer('priority');
    const expireDays = args.integer('expire-days', 1);
    const wantMassQuery = args.flag('want-mass-query')
      ? true
      : args.flag('no-want-mass-query')
        ? false
        : undefined;
    const publicRead = args.flag('public-read');
    const policyFile = args.string('writer-policy-out');
    if (policyFile === undefined && (args.string('writer') !== undefined || args.flag('writer-gc')))
      throw new UsageError('--writer and --writer-gc go with --writer-policy-out', 'init');
    const writer = args.string('writer');
    const policy =
      policyFile === undefined
        ? undefined
        : await emitWriterPolicy({
            storeUrl: url,
            file: policyFile,
            ...(writer !== undefined && { writer }),
            gc: args.flag('writer-gc'),
          });
    const store = await openCliStore(url, ctx, 'store', 'init');
    if (expireDays !== undefined) ctx.stderr.write(`nixcache: warning: ${EXPIRY_WARNING}\n`);
    try {
      const info = await initCache(store, {
        ...(priority !== undefined && { priority }),
        ...(wantMassQuery !== undefined && { wantMassQuery }),
        publicRead,
        ...(expireDays !== undefined && { expireDays }),
        signal: ctx.signal,
      });
      if (args.flag('json')) {
        await writeJson(ctx.stdout, {
          store: store.location,
          cacheInfo: info,
          publicRead,
          expireDays: expireDays ?? null,
          ...(policy && { writerPolicy: writerPolicyJson(policy) }),
        });
      } else {
        const parts = [`StoreDir ${info.storeDir}`];
        if (info.wantMassQuery !== undefined) parts.push(`WantMassQuery ${info.wantMassQuery ? 1 : 0}`);
        if (info.priority !== undefined) parts.push(`Priority ${info.priority}`);
        if (publicRead) parts.push('anonymous read');
        if (expireDays !== undefined) parts.push(`expiry after ${expireDays} days`);
        await writeLine(ctx.stdout, `initialised ${store.location}: ${parts.join(', ')}`);
        if (policy) await writeLine(ctx.stdout, writerPolicyLines(policy).join('\n'));
      }
      return EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { init };
