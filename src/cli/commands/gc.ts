/**
 * `nixcache gc --store URL`: garbage collection of a binary cache on a plain bucket or directory
 * (collectGarbage). Keeps the closures of every kept pin revision, of `--root` paths and of
 * narinfos uploaded within `--keep-days`; deletes the rest referrers first, never anything younger
 * than `--grace`. `--dry-run` lists exactly what would go. Exit 1 when a root is missing from the
 * cache or an object could not be deleted.
 */

import { housekeeping } from '../../cache/cache-graph.js';
import { collectGarbage, DEFAULT_GRACE_MS, type GcObject } from '../../cache/gc.js';
import { closeAll, openCliStore, preflight, readInputText } from '../common.js';
import { EXIT, writeJson, writeLine } from '../context.js';
import { formatDuration, parseDuration } from '../duration.js';
import { resolveStorePaths } from '../paths.js';
import type { Command } from '../run.js';

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

const gc: Command = {
  spec: {
    name: 'gc',
    summary: 'delete what no pin, root or recent push needs, without breaking a closure',
    usage: [
      '--store URL [--keep-days N] [--root PATH]... [--roots-file FILE] [--grace DURATION] [--dry-run] [--json]',
    ],
    details: [
      'Keeps the closures (References, transitively, as the cache records them) of every kept revision of every pin (nixcache pin), of --root paths, and of every narinfo uploaded within --keep-days; deletes everything else: each narinfo before the narinfos it refers to and before its .ls, then NARs no remaining narinfo names, then orphan listings. Nothing younger than --grace (default 1d) is deleted, so a push in progress keeps its NAR; each object is checked again just before it is deleted. Killed at any point, gc leaves no narinfo without its NAR or references; run it again to finish.',
      'Replaces expiry rules (init --expire-days, mc ilm rule add), which delete by age and break closures. Needs an s3:// or file:// URL (it lists and deletes objects).',
      '--json prints {"dryRun","deleted":{"narinfo","ls","nar"},"kept":{"narinfo","ls","nar","other"},"roots":{"pins","pinRevisions","explicit","recent"},"marked","missingRoots","skipped":[{"key","reason"}],"timings":{"scanMs","markMs","sweepMs"},"memory"} (each count {"objects","bytes"}), plus "objects":[{"key","kind","size"}] with --dry-run. Exit 1 when a root is missing or an object could not be deleted.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache (required; s3:// or file://)' },
      'keep-days': {
        type: 'string',
        value: 'N',
        help: 'keep the closures of narinfos uploaded in the last N days',
      },
      root: { type: 'string', multiple: true, value: 'PATH', help: 'keep the closure of this store path' },
      'roots-file': {
        type: 'string',
        value: 'FILE',
        help: 'more roots, one store path a line (- for stdin)',
      },
      grace: {
        type: 'string',
        value: 'DURATION',
        help: 'never delete objects younger than this (default 1d)',
      },
      'dry-run': { type: 'boolean', help: 'list what would be deleted; change nothing' },
      'batch-size': {
        type: 'string',
        value: 'N',
        help: 'keys per delete request (default 1000, the S3 limit)',
      },
      json: { type: 'boolean', help: 'print the result as JSON' },
      verbose: { type: 'boolean', short: 'v', help: 'print each deleted object on stderr' },
    },
    positionals: { max: 0 },
    examples: [
      "nixcache gc --store 's3://nix-cache?endpoint=s3.homelab.local' --keep-days 30",
      'nixcache gc --store file:///srv/cache --root ./result --grace 12h --dry-run',
      'nix-store -qR /run/current-system | nixcache gc --store file:///srv/cache --roots-file -',
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const keepDays = args.integer('keep-days', 0);
    const graceText = args.string('grace');
    const graceMs = graceText === undefined ? DEFAULT_GRACE_MS : parseDuration(graceText, 'grace', 'gc');
    const batchSize = args.integer('batch-size', 1, 1000);
    const dryRun = args.flag('dry-run');
    const json = args.flag('json');
    const verbose = args.flag('verbose');
    const store = await openCliStore(url, ctx, 'store', 'gc');
    try {
      const rootArgs = [...args.strings('root')];
      const rootsFile = args.string('roots-file');
      if (rootsFile !== undefined) {
        const text = await readInputText(rootsFile, ctx);
        rootArgs.push(
          ...text
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l && !l.startsWith('#')),
        );
      }
      const roots = await resolveStorePaths(rootArgs, store.storeDir, 'gc');
      housekeeping(store, 'gc');
      await preflight(store, ctx);
      const listed: GcObject[] = [];
      const result = await collectGarbage(store, {
        ...(keepDays !== undefined && { keepDays }),
        roots,
        graceMs,
        dryRun,
        ...(batchSize !== undefined && { batchSize }),
        signal: ctx.signal,
        onDelete(objects) {
          if (dryRun) listed.push(...objects);
          if (verbose && !dryRun)
            for (const o of objects)
              ctx.stderr.write(`deleted ${o.kind.padEnd(7)} ${o.key} (${o.size} bytes)\n`);
        },
        onProgress(event) {
          if (verbose && event.type === 'phase') ctx.stderr.write(`gc: ${event.phase}\n`);
          if (verbose && event.type === 'skip') ctx.stderr.write(`kept    ${event.key}: ${event.reason}\n`);
        },
      });
      if (ctx.signal.aborted) return EXIT.interrupted;
      if (json) {
        await writeJson(ctx.stdout, { ...result, ...(dryRun && { objects: listed }) });
      } else {
        const lines: string[] = [];
        for (const o of listed) lines.push(`would delete ${o.kind.padEnd(7)} ${o.key} (${o.size} bytes)`);
        for (const r of result.missingRoots) lines.push(`missing root ${r}: no narinfo in the cache`);
        for (const s of result.skipped) lines.push(`kept ${s.key}: ${s.reason}`);
        const d = result.deleted;
        const k = result.kept;
        const verb = dryRun ? 'would delete' : 'deleted';
        lines.push(
          `${verb} ${d.narinfo.objects} narinfos, ${d.ls.objects} listings, ${d.nar.objects} NARs ` +
            `(${bytes(d.narinfo.bytes + d.ls.bytes + d.nar.bytes)}) from ${store.location}; ` +
            `kept ${k.narinfo.objects} narinfos, ${k.nar.objects} NARs (${bytes(k.narinfo.bytes + k.ls.bytes + k.nar.bytes)}), ` +
            `${k.other.objects} other objects; roots: ${result.roots.pinRevisions} revisions of ${result.roots.pins} pins, ` +
            `${result.roots.explicit} explicit, ${result.roots.recent} recent (grace ${formatDuration(graceMs)}` +
            `${keepDays !== undefined ? `, keep-days ${keepDays}` : ''})`,
        );
        await writeLine(ctx.stdout, lines.join('\n'));
      }
      const refused = result.skipped.some((s) => s.reason.startsWith('the server refused'));
      return result.missingRoots.length || refused ? EXIT.problems : EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { gc };
