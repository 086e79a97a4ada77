/**
 * `nixcache repair --store URL`: finds what breaks substitution and fixes it (repairCache): a
 * narinfo whose NAR is missing or truncated gets its NAR again from the local store directory or
 * a `--from` cache (same NarHash), otherwise it is deleted; a missing reference is pushed or
 * copied, otherwise its referrers are deleted; whatever's closure is then incomplete is deleted,
 * referrers first; stale incomplete uploads are aborted. `--dry-run` reports and changes nothing.
 * Exit 1 when something could not be fixed.
 */

import { housekeeping } from '../../cache/cache-graph.js';
import { DEFAULT_GRACE_MS } from '../../cache/gc.js';
import { repairCache } from '../../cache/repair.js';
import { closeAll, loadSecretKeys, openCliStore, preflight } from '../common.js';
import { EXIT, writeJson, writeLine } from '../context.js';
import { parseDuration } from '../duration.js';
import type { Command } from '../run.js';

const repair: Command = {
  spec: {
    name: 'repair',
    summary: 'fix what breaks substitution: missing or truncated NARs, missing references, stale uploads',
    usage: [
      '--store URL [--store-dir DIR | --no-store-dir] [--from URL]... [--secret-key-file F]... [--grace DURATION] [--dry-run] [--json]',
    ],
    details: [
      "A narinfo whose NAR is missing or has the wrong size: the NAR is uploaded again from --store-dir (default /nix/store) or a --from cache when the path is there with the same NarHash (the narinfo keeps its signatures); otherwise the narinfo is deleted. A reference without a narinfo: it is pushed (signed with --secret-key-file and the URL's secret-key) or copied from a --from cache with its closure; otherwise its referrers are deleted. Every narinfo whose closure is then incomplete is deleted too, referrers first. Incomplete uploads (S3 multipart uploads; temporary files on file://) older than --grace (default 1d) are aborted. NARs left without a narinfo are for nixcache gc.",
      '--json prints {"dryRun","checked","pendingUploadsUnsupported","reports":[{"problem","action","path","key","detail"}]}; problem is missing-nar, wrong-size-nar, missing-reference, unreadable, incomplete-closure or stale-upload; action is reuploaded, deleted, aborted or failed (what would be done, with --dry-run). Exit 1 when an action failed.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache to repair (required; s3:// or file://)' },
      'store-dir': {
        type: 'string',
        value: 'DIR',
        help: 'local store directory to re-upload from (default /nix/store)',
      },
      'no-store-dir': { type: 'boolean', help: 'do not re-upload from a local store directory' },
      from: { type: 'string', multiple: true, value: 'URL', help: 'another cache to re-upload from' },
      'secret-key-file': {
        type: 'string',
        multiple: true,
        value: 'FILE',
        help: 'sign references pushed from the store directory',
      },
      grace: {
        type: 'string',
        value: 'DURATION',
        help: 'abort incomplete uploads older than this (default 1d)',
      },
      'dry-run': { type: 'boolean', help: 'report what would be done; change nothing' },
      json: { type: 'boolean', help: 'print the result as JSON' },
    },
    positionals: { max: 0 },
    examples: [
      "nixcache repair --store 's3://nix-cache?endpoint=s3.homelab.local' --secret-key-file /etc/nix/cache.secret --dry-run",
      'nixcache repair --store file:///srv/cache --no-store-dir --from https://cache.nixos.org',
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const graceText = args.string('grace');
    const graceMs = graceText === undefined ? DEFAULT_GRACE_MS : parseDuration(graceText, 'grace', 'repair');
    const dryRun = args.flag('dry-run');
    const store = await openCliStore(url, ctx, 'store', 'repair');
    const from = [];
    try {
      for (const u of args.strings('from')) from.push(await openCliStore(u, ctx, 'from', 'repair'));
      const keys = await loadSecretKeys(
        [...args.strings('secret-key-file'), ...store.config.secretKeyFiles],
        'repair',
      );
      housekeeping(store, 'repair');
      await preflight(store, ctx);
      const result = await repairCache(store, {
        storeDir: args.flag('no-store-dir') ? false : (args.string('store-dir') ?? '/nix/store'),
        from,
        secretKeys: keys,
        graceMs,
        dryRun,
        signal: ctx.signal,
      });
      if (ctx.signal.aborted) return EXIT.interrupted;
      if (args.flag('json')) await writeJson(ctx.stdout, result);
      else {
        const verb = dryRun ? 'would be ' : '';
        const lines = result.reports.map(
          (r) =>
            `${r.problem.padEnd(18)} ${r.path ?? r.key}: ${verb}${r.action}${r.detail ? ` (${r.detail})` : ''}`,
        );
        if (result.pendingUploadsUnsupported)
          lines.push(`note: ${store.location} cannot list incomplete uploads; they were not checked`);
        const fixed = result.reports.filter((r) => r.action !== 'failed').length;
        lines.push(
          `checked ${result.checked} narinfos in ${store.location}: ${result.reports.length} problems, ${fixed} ${dryRun ? 'fixable' : 'fixed'}`,
        );
        await writeLine(ctx.stdout, lines.join('\n'));
      }
      return result.reports.some((r) => r.action === 'failed') ? EXIT.problems : EXIT.ok;
    } finally {
      await closeAll(store, ...from);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { repair };
