/**
 * `nixcache verify --store URL --trusted-public-key KEY... [--all | PATH...]`: like
 * `nix store verify --store URL`, with a report per path. Each narinfo must be signed by a
 * trusted key (or be content-addressed), and unless `--no-contents` its NAR is downloaded,
 * decompressed and checked against every hash and size. Exit 1 when any path is not ok.
 */
import { checkClosures } from '../../cache/closure-check.js';
import { verifyCache } from '../../cache/verify.js';
import { isHashPart } from '../../store-path/store-path.js';
import { closeAll, openCliStore, parseTrustedKeys, preflight, redactSecrets } from '../common.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { resolveStorePaths } from '../paths.js';
import { Progress, wantProgress } from '../progress.js';
import type { Command } from '../run.js';

const verify: Command = {
  spec: {
    name: 'verify',
    summary: 'check signatures and contents of the paths in a binary cache',
    usage: ['--store URL --trusted-public-key KEY... [--no-contents] [--json] (--all | PATH...)'],
    details: [
      'Statuses: ok; untrusted (no valid signature by a trusted key and no valid CA claim); corrupt (the NAR does not match its hashes or sizes, or is not a valid NAR); missing-nar (the narinfo points to a NAR that is not there); missing (no narinfo); unreadable (the narinfo does not parse or names another path); error (the check could not be done, e.g. a network failure).',
      'Human output lists the paths that are not ok and a summary; --json prints {"ok":BOOL,"summary":{"total","ok","untrusted","corrupt","missing-nar","missing","unreadable","error","narBytes"},"reports":[{"hashPart","storePath","status","reason","signedBy","narSize"}]}. Exit 1 when any path is not ok.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache to check (required)' },
      'trusted-public-key': {
        type: 'string',
        short: 'k',
        multiple: true,
        value: 'KEY',
        help: 'a trusted public key NAME:BASE64 (at least one; several may be separated by spaces)',
        aliases: ['trusted-public-keys'],
      },
      all: {
        type: 'boolean',
        help: 'check every narinfo in the cache (needs a listable store: s3:// or file://)',
      },
      'no-contents': { type: 'boolean', help: 'check narinfos and signatures only; do not download NARs' },
      parallelism: { type: 'string', value: 'N', help: 'paths checked at once (default 4)' },
      json: { type: 'boolean', help: 'print the reports as JSON (no progress bar)' },
      verbose: { type: 'boolean', short: 'v', help: 'list ok paths too' },
      closure: {
        type: 'boolean',
        help: 'also report closure holes (a reference without a narinfo, a missing or truncated NAR); JSON adds "holes":[{"path","problem","detail"}]; fixed by nixcache repair',
      },
    },
    examples: [
      "nixcache verify --store 's3://nix-cache?endpoint=s3.homelab.local' -k nixbuilder-1:AbC…= --all",
      'nixcache verify --store https://cache.nixos.org -k cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= /nix/store/…-hello-2.12',
      'nixcache verify --store file:///srv/cache -k my-1:…= --all --no-contents --json | jq .summary',
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const keys = parseTrustedKeys(args.strings('trusted-public-key'), 'verify');
    if (keys.length === 0) throw new UsageError('give at least one --trusted-public-key', 'verify');
    const all = args.flag('all');
    if (all && args.positionals.length)
      throw new UsageError('give either --all or paths, not both', 'verify');
    if (!all && !args.positionals.length) throw new UsageError('give the paths to check, or --all', 'verify');
    const parallelism = args.integer('parallelism', 1, 256);
    const json = args.flag('json');
    const verbose = args.flag('verbose');
    const store = await openCliStore(url, ctx, 'store', 'verify');
    try {
      await preflight(store, ctx);
      // Hash parts go to verifyCache as they are; anything else resolves as in push.
      const paths = all
        ? []
        : await Promise.all(
            args.positionals.map(async (p) =>
              isHashPart(p) ? p : (await resolveStorePaths([p], store.storeDir, 'verify'))[0]!,
            ),
          );
      const progress = new Progress(ctx.stderr, 'verify', wantProgress(ctx.stderr, json, ctx.env));
      const s = progress.state;

      let result: Awaited<ReturnType<typeof verifyCache>>;
      try {
        result = await verifyCache(store, {
          trustedKeys: keys,
          contents: !args.flag('no-contents'),
          ...(!all && { paths }),
          ...(parallelism !== undefined && { parallelism }),
          signal: ctx.signal,
          // Paths known so far (the listing streams with --all) and NAR bytes checked so far.
          onQueued() {
            s.total++;
          },
          onBytes(bytes) {
            s.bytes += bytes;
          },
          onReport(report) {
            s.done++;
            if (report.status !== 'ok') s.failed++;
          },
        });
      } finally {
        progress.finish();
      }
      if (ctx.signal.aborted) return EXIT.interrupted;
      const holes = args.flag('closure')
        ? await checkClosures(store, { ...(!all && { paths: args.positionals }), signal: ctx.signal })
        : undefined;
      const ok = result.ok && !holes?.length;
      if (json) {
        // A reason can quote a server's error: it goes through the same redaction as errors.
        const reports = [...result.reports]
          .sort((a, b) => (a.hashPart < b.hashPart ? -1 : 1))
          .map((r) => (r.reason === undefined ? r : { ...r, reason: redactSecrets(r.reason) }));
        await writeJson(ctx.stdout, { ok, summary: result.summary, reports, ...(holes && { holes }) });
      } else {
        const lines: string[] = [];
        for (const r of result.reports) {
          if (r.status === 'ok' && !verbose) continue;
          const what = r.storePath ?? r.hashPart;
          lines.push(`${r.status.padEnd(11)} ${what}${r.reason ? `: ${redactSecrets(r.reason)}` : ''}`);
        }
        const sum = result.summary;
        const counts = (
          ['ok', 'untrusted', 'corrupt', 'missing-nar', 'missing', 'unreadable', 'error'] as const
        )
          .filter((k) => sum[k] > 0 || k === 'ok')
          .map((k) => `${sum[k]} ${k}`);
        for (const h of holes ?? [])
          lines.push(`hole ${h.problem.padEnd(17)} ${h.path}${h.detail ? `: ${h.detail}` : ''}`);
        lines.push(`checked ${sum.total} paths in ${store.location}: ${counts.join(', ')}`);
        if (holes)
          lines.push(
            `closure holes: ${holes.length}${holes.length ? " (run 'nixcache repair' to fix them)" : ''}`,
          );
        await writeLine(ctx.stdout, lines.join('\n'));
      }
      return ok ? EXIT.ok : EXIT.problems;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { verify };
