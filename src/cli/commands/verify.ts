/**
 * `nixcache verify --store URL --trusted-public-key KEY... [--all | PATH...]`: like
 * `nix store verify --store URL`, with a report per path. Each narinfo must be signed by a
 * trusted key (or be content-addressed), and unless `--no-contents` its NAR is downloaded,
 * decompressed and checked against every hash and size. Exit 1 when any path is not ok.
 */
import { availableParallelism } from 'node:os';
import { checkClosures } from '../../cache/closure-check.js';
import { ResumeLog } from '../../cache/resume.js';
import { parseShard } from '../../cache/shard.js';
import { addToVerifySummary, emptyVerifySummary, type PathReport, verifyCache } from '../../cache/verify.js';
import { canVerifyOnWorkers } from '../../cache/verify-pool.js';
import type { BinaryCacheStore } from '../../store/binary-cache.js';
import { storeOpenSpec } from '../../store/open.js';
import { isHashPart } from '../../store-path/store-path.js';
import { closeAll, openCliStore, parseTrustedKeys, preflight, redactSecrets } from '../common.js';
import { EXIT, UsageError, writeJson, writeLine } from '../context.js';
import { resolveStorePaths } from '../paths.js';
import { Progress, wantProgress } from '../progress.js';
import type { Command } from '../run.js';

/**
 * Worker threads when they pay: one per core (up to 8) on a multi-core machine, for a store the
 * workers can open again, and for more paths than a worker's start-up is worth.
 */
async function defaultWorkers(store: BinaryCacheStore, paths: number): Promise<number> {
  const cores = availableParallelism();
  if (cores < 2 || paths < 64 || !storeOpenSpec(store) || !(await canVerifyOnWorkers())) return 0;
  return Math.min(cores, 8);
}

const verify: Command = {
  spec: {
    name: 'verify',
    summary: 'check signatures and contents of the paths in a binary cache',
    usage: [
      '--store URL --trusted-public-key KEY... [--no-contents] [--json] [--shard I/N] [--resume FILE] [--workers N] (--all | PATH...)',
    ],
    details: [
      'Statuses: ok; untrusted (no valid signature by a trusted key and no valid CA claim); corrupt (the NAR does not match its hashes or sizes, or is not a valid NAR); missing-nar (the narinfo points to a NAR that is not there); missing (no narinfo); unreadable (the narinfo does not parse or names another path); error (the check could not be done, e.g. a network failure).',
      'Human output lists the paths that are not ok as they are found, then a summary. --json prints NDJSON, one JSON object per line as each path is done: {"hashPart","storePath","status","reason","signedBy","narSize"}, and last {"summary":{"total","ok","untrusted","corrupt","missing-nar","missing","unreadable","error","narBytes"},"ok":BOOL} (jq: `jq -c \'select(.summary)\'` for the summary, `select(.status)` for the reports). Exit 1 when any path is not ok.',
      'Memory stays flat whatever the size of the cache: the listing streams, reports are printed as they come and only the counts are kept.',
      '--shard I/N checks only part I of N of the paths (a fixed partition by hash part), so N machines can split one cache with no coordination. --resume FILE logs each finished report to FILE (NDJSON, the same report objects); when FILE exists, the paths it holds are skipped and counted in the summary, so a run that was interrupted (even killed) continues where it stopped and checks every path exactly once. Keep one FILE per shard.',
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
      parallelism: {
        type: 'string',
        value: 'N',
        help: 'paths checked at once (default: one per core from a file:// cache, 4 from a remote one; 64 with --no-contents)',
      },
      workers: {
        type: 'string',
        value: 'N',
        help: 'worker threads checking paths (default: one per core, up to 8; 0 checks on the main thread)',
      },
      shard: { type: 'string', value: 'I/N', help: 'check only shard I of N (split by hash part)' },
      resume: {
        type: 'string',
        value: 'FILE',
        help: 'log finished reports to FILE and skip those it already holds',
      },
      json: {
        type: 'boolean',
        help: 'print NDJSON: one report per line, the summary last (no progress bar)',
      },
      verbose: { type: 'boolean', short: 'v', help: 'list ok paths too' },
      closure: {
        type: 'boolean',
        help: 'also report closure holes (a reference without a narinfo, a missing or truncated NAR); the JSON summary line adds "holes":[{"path","problem","detail"}]; fixed by nixcache repair',
      },
    },
    examples: [
      "nixcache verify --store 's3://nix-cache?endpoint=s3.homelab.local' -k nixbuilder-1:AbC…= --all",
      'nixcache verify --store https://cache.nixos.org -k cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= /nix/store/…-hello-2.12',
      "nixcache verify --store file:///srv/cache -k my-1:…= --all --no-contents --json | jq -c 'select(.summary)'",
      "nixcache verify --store 's3://nix-cache' -k my-1:…= --all --shard 3/8 --resume verify-3.ndjson",
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
    const workersFlag = args.integer('workers', 0, 64);
    const json = args.flag('json');
    const verbose = args.flag('verbose');
    const contents = !args.flag('no-contents');
    const shardText = args.string('shard');
    let shard: ReturnType<typeof parseShard> | undefined;
    try {
      shard = shardText === undefined ? undefined : parseShard(shardText);
    } catch (e) {
      throw new UsageError(`--shard: ${(e as Error).message}`, 'verify');
    }
    const resumeFile = args.string('resume');
    const store = await openCliStore(url, ctx, 'store', 'verify');
    let resume: ResumeLog<PathReport> | undefined;
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
      // Reports an earlier run logged count in this run's summary.
      const previous = emptyVerifySummary();
      if (resumeFile !== undefined) {
        resume = await ResumeLog.open<PathReport>(resumeFile, {
          onPrevious: (r) => addToVerifySummary(previous, r, contents),
        });
      }
      const progress = new Progress(ctx.stderr, 'verify', wantProgress(ctx.stderr, json, ctx.env));
      const s = progress.state;
      s.done = previous.total;
      s.total = previous.total;
      s.failed = previous.total - previous.ok;
      // Named paths are known at once (those of other shards or logged earlier drop out as they go).
      if (!all) s.total += paths.length;

      const workers = workersFlag ?? (await defaultWorkers(store, all ? Infinity : paths.length));
      let result: Awaited<ReturnType<typeof verifyCache>>;
      try {
        result = await verifyCache(store, {
          trustedKeys: keys,
          contents,
          ...(!all && { paths }),
          ...(parallelism !== undefined && { parallelism }),
          workers,
          ...(shard && { shard }),
          ...(resume && { resume, previous }),
          signal: ctx.signal,
          // Paths known so far (the listing streams with --all) and NAR bytes checked so far.
          onQueued() {
            if (all) s.total++;
          },
          onBytes(bytes) {
            s.bytes += bytes;
          },
          // Printed as it comes (awaited: a slow pipe slows the run instead of filling memory).
          async onReport(report) {
            s.done++;
            if (report.status !== 'ok') s.failed++;
            if (ctx.signal.aborted) return;
            // A reason can quote a server's error: it goes through the same redaction as errors.
            const r =
              report.reason === undefined ? report : { ...report, reason: redactSecrets(report.reason) };
            if (json) await writeJson(ctx.stdout, r);
            else if (r.status !== 'ok' || verbose) {
              const what = r.storePath ?? r.hashPart;
              progress.clear();
              await writeLine(ctx.stdout, `${r.status.padEnd(11)} ${what}${r.reason ? `: ${r.reason}` : ''}`);
            }
          },
        });
      } finally {
        progress.finish();
      }
      if (ctx.signal.aborted) return EXIT.interrupted;
      const holes = args.flag('closure')
        ? await checkClosures(store, { ...(!all && { paths }), signal: ctx.signal })
        : undefined;
      const ok = result.ok && !holes?.length;
      const sum = result.summary;
      if (json) {
        await writeJson(ctx.stdout, { summary: sum, ok, ...(holes && { holes }) });
      } else {
        for (const h of holes ?? [])
          await writeLine(
            ctx.stdout,
            `hole ${h.problem.padEnd(17)} ${h.path}${h.detail ? `: ${h.detail}` : ''}`,
          );
        const counts = (
          ['ok', 'untrusted', 'corrupt', 'missing-nar', 'missing', 'unreadable', 'error'] as const
        )
          .filter((k) => sum[k] > 0 || k === 'ok')
          .map((k) => `${sum[k]} ${k}`);
        const part = shard ? ` (shard ${shard.index}/${shard.count})` : '';
        const earlier = previous.total ? `, ${previous.total} of them by an earlier run (${resumeFile})` : '';
        await writeLine(
          ctx.stdout,
          `checked ${sum.total} paths in ${store.location}${part}${earlier}: ${counts.join(', ')}` +
            (holes
              ? `\nclosure holes: ${holes.length}${holes.length ? " (run 'nixcache repair' to fix them)" : ''}`
              : ''),
        );
      }
      return ok ? EXIT.ok : EXIT.problems;
    } finally {
      resume?.close();
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { verify };
