/**
 * `nixcache lint --store URL [--fix] [--json]`: reports the narinfo quirks clients trip over, one
 * finding per narinfo and rule (src/cache/lint-rules.ts), as the cache is walked; `--fix` repairs
 * what can be repaired without invalidating a signature, with conditional writes. `--json` prints
 * NDJSON like `verify --json`: one finding a line, the summary last. Exit 1 when a finding is left
 * unfixed.
 */
import { lintCache } from '../../cache/lint.js';
import { LINT_RULES } from '../../cache/lint-rules.js';
import { closeAll, openCliStore, preflight, redactSecrets } from '../common.js';
import { EXIT, writeJson, writeLine } from '../context.js';
import type { Command } from '../run.js';

const lint: Command = {
  spec: {
    name: 'lint',
    summary: 'report (and with --fix repair) narinfo quirks that clients trip over',
    usage: ['--store URL [--fix] [--json] [--parallelism N]'],
    details: [
      `Rules: ${Object.entries(LINT_RULES)
        .map(([name, r]) => `${name}${r.fixable ? '' : ' (not fixable)'}`)
        .join(
          ', ',
        )}. missing-listing applies when the store URL has write-nar-listing=1 or the cache holds any .ls file.`,
      '--fix rewrites narinfos in the form Nix writes (the signed fields are unchanged, so every signature stays valid), with the conditional writes of sign; computes a missing FileHash/FileSize from the NAR file; settles a missing Compression, or a URL extension that contradicts it, by the magic number of the data (Compression set to what the data is; the file copied to the name that gives, only when the name is wrong); builds missing listings. What cannot be fixed is reported with "fixed":false.',
      '--json prints NDJSON, one line per finding as each narinfo is done: {"rule","hashPart","storePath","message","fixable","fixed"[,"fixError"]}, and last {"summary":{"narinfos","findings","fixed","unfixed","rules":{RULE:N}},"ok":BOOL}. Exit 1 when any finding is left unfixed.',
    ],
    options: {
      store: { type: 'string', value: 'URL', help: 'the cache (s3:// or file://; required)' },
      fix: { type: 'boolean', help: 'repair what can be repaired' },
      parallelism: { type: 'string', value: 'N', help: 'narinfos checked at once (default 8)' },
      json: { type: 'boolean', help: 'print NDJSON: one finding per line, the summary last' },
    },
    positionals: { max: 0 },
    examples: [
      "nixcache lint --store 's3://nix-cache?endpoint=s3.homelab.local'",
      "nixcache lint --store file:///srv/nix-cache --fix --json | jq -c 'select(.rule)'",
    ],
  },
  async run(args, ctx) {
    const url = args.required('store');
    const fix = args.flag('fix');
    const json = args.flag('json');
    const parallelism = args.integer('parallelism', 1, 256);
    const store = await openCliStore(url, ctx, 'store', 'lint');
    try {
      await preflight(store, ctx);
      const summary = await lintCache(store, {
        fix,
        ...(parallelism !== undefined && { parallelism }),
        signal: ctx.signal,
        async onFinding(f) {
          const message = redactSecrets(f.message);
          if (json) {
            await writeJson(ctx.stdout, {
              ...f,
              message,
              ...(f.fixError !== undefined && { fixError: redactSecrets(f.fixError) }),
            });
          } else {
            const state = f.fixed
              ? ' (fixed)'
              : fix && f.fixable
                ? ` (not fixed: ${redactSecrets(f.fixError ?? '')})`
                : '';
            await writeLine(
              ctx.stdout,
              `${f.rule.padEnd(19)} ${f.storePath ?? f.hashPart}: ${message}${state}`,
            );
          }
        },
      });
      if (ctx.signal.aborted) return EXIT.interrupted;
      const ok = summary.unfixed === 0;
      if (json) await writeJson(ctx.stdout, { summary, ok });
      else {
        await writeLine(
          ctx.stdout,
          `linted ${summary.narinfos} narinfos in ${store.location}: ${summary.findings} findings` +
            (fix ? `, ${summary.fixed} fixed, ${summary.unfixed} left` : ''),
        );
      }
      return ok ? EXIT.ok : EXIT.problems;
    } finally {
      await closeAll(store);
    }
  },
};

export const commands: Readonly<Record<string, Command>> = { lint };
