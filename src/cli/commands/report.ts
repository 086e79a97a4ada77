/**
 * `nixcache report --store URL --out report.html`: one self-contained HTML page a maintainer
 * opens to see the cache (totals and sizes by compression, the largest closures, upload ages,
 * paths a key has not signed, closure holes, and what `gc --dry-run` would delete with the same
 * options), and the same data as `--json`.
 */
import { rename, writeFile } from 'node:fs/promises';
import { DEFAULT_GRACE_MS } from '../../cache/gc.js';
import { cacheReport } from '../../cache/report.js';
import { formatPublicKey } from '../../signing/keys.js';
import { closeAll, openCliStore, parseTrustedKeys, preflight, readInputText } from '../common.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { parseDuration } from '../duration.js';
import { resolveStorePaths } from '../paths.js';
import { formatBytes } from '../progress.js';
import { renderReportHtml } from '../report-html.js';
import type { Command } from '../run.js';

const report: Command = {
  spec: {
    name: 'report',
    summary: 'an HTML page (or JSON) of what a binary cache holds',
    usage: [
      '--store URL (--out FILE | --json) [-k KEY] [--keep-days N] [--root PATH]... [--roots-file FILE] [--grace DURATION] [--no-gc] [--top N]',
    ],
    details: [
      'Reads the whole cache once (a listing with sizes and times, then every narinfo; needs an s3:// or file:// URL) and writes one HTML file that needs nothing else: no network, no external script or style. It shows the totals and the stored size by compression, the top-level paths with the largest closures, how old the objects are, the narinfos with no valid signature by the key given with -k, the references that name paths the cache lacks (closure holes), and what `gc --dry-run` would delete with the same --keep-days, --root and --grace (unless --no-gc). Bar charts are drawn by the page itself; the numbers stand beside them.',
      '--json prints the same data: {"store","generatedAt","totals":{"narinfos","narFiles","fileBytes","narBytes","listings","objects","objectBytes"},"byCompression":[{"method","narinfos","fileBytes","narBytes"}],"largestClosures":[{"path","closurePaths","closureBytes"}],"ageHistogram":[{"bucket","objects","bytes"}],"unsigned":{"key","count","examples"}?,"closureHoles":{"count","examples":[{"path","missing"}]},"gc":{"options","deleted":[{"kind","objects","bytes"}],"kept":[…]}?}.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache (required; s3:// or file://)' },
      out: { type: 'string', value: 'FILE', help: 'write the HTML page here' },
      json: { type: 'boolean', help: 'print the data as JSON' },
      'trusted-public-key': {
        type: 'string',
        short: 'k',
        value: 'KEY',
        help: 'report the narinfos without a valid signature by this key NAME:BASE64',
      },
      'keep-days': { type: 'string', value: 'N', help: 'for the gc section: as gc --keep-days' },
      root: { type: 'string', multiple: true, value: 'PATH', help: 'for the gc section: as gc --root' },
      'roots-file': { type: 'string', value: 'FILE', help: 'for the gc section: as gc --roots-file' },
      grace: { type: 'string', value: 'DURATION', help: 'for the gc section: as gc --grace (default 1d)' },
      'no-gc': { type: 'boolean', help: 'leave out what gc would delete' },
      top: { type: 'string', value: 'N', help: 'closures listed (default 20)' },
    },
    positionals: { max: 0 },
    examples: [
      "nixcache report --store 's3://nix-cache?endpoint=s3.homelab.local' --out report.html -k nixbuilder-1:AbC…= --keep-days 30",
      'nixcache report --store file:///srv/cache --json | jq .totals',
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const out = args.string('out');
    const json = args.flag('json');
    if (out === undefined && !json) throw new UsageError('give --out FILE, --json, or both', 'report');
    const keys = parseTrustedKeys(args.strings('trusted-public-key'), 'report');
    if (keys.length > 1) throw new UsageError('give one key with -k', 'report');
    const keepDays = args.integer('keep-days', 0);
    const top = args.integer('top', 1, 1000);
    const graceText = args.string('grace');
    const graceMs = graceText === undefined ? DEFAULT_GRACE_MS : parseDuration(graceText, 'grace', 'report');
    const store = await openCliStore(url, ctx, 'store', 'report');
    try {
      const rootArgs = [...args.strings('root')];
      const rootsFile = args.string('roots-file');
      if (rootsFile !== undefined)
        rootArgs.push(
          ...(await readInputText(rootsFile, ctx))
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l && !l.startsWith('#')),
        );
      const roots = await resolveStorePaths(rootArgs, store.storeDir, 'report');
      await preflight(store, ctx);
      const data = await cacheReport(store, {
        ...(keys[0] && { key: formatPublicKey(keys[0]) }),
        ...(!args.flag('no-gc') && {
          gc: { ...(keepDays !== undefined && { keepDays }), roots, graceMs },
        }),
        ...(top !== undefined && { top }),
        signal: ctx.signal,
      });
      if (ctx.signal.aborted) return EXIT.interrupted;
      if (out !== undefined) {
        // Written next to the target, then renamed: a reader never sees half a page.
        const tmp = `${out}.tmp-${process.pid}`;
        await writeFile(tmp, renderReportHtml(data));
        await rename(tmp, out);
      }
      if (json) await writeJson(ctx.stdout, data);
      else {
        const t = data.totals;
        await writeLine(
          ctx.stdout,
          `wrote ${out}: ${t.narinfos} narinfos, ${t.narFiles} NARs (${formatBytes(t.fileBytes)} stored), ` +
            `${data.closureHoles.count} closure holes` +
            (data.unsigned ? `, ${data.unsigned.count} not signed by ${data.unsigned.key}` : ''),
        );
      }
      return EXIT.ok;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { report };
