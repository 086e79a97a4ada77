/**
 * The `nixcache` command dispatcher: finds the command, parses its arguments, runs it, and turns
 * every outcome into an exit code (0 success, 1 problems found or failure, 2 usage error, 130
 * interrupted) with errors as one line on stderr (a stack trace only with `--debug`). Command
 * modules load lazily, so `nixcache --help` does not load the AWS SDK or the codecs.
 */
import { NixcacheError } from '../errors.js';
import { type CommandSpec, formatHelp, nearest, type ParsedArgs, parseCommand } from './args.js';
import { type CliContext, EXIT, UsageError, write } from './context.js';
import { errorHint, registerCommandLineSecrets, safeDiagnostic, safeMessage } from './safe-text.js';

/** A runnable command: its declaration and what it does (returns the exit code). */
export interface Command {
  readonly spec: CommandSpec;
  run(args: ParsedArgs, ctx: CliContext): Promise<number>;
}

/** A command module exports its commands by full name (`key generate`, `push`). */
export type CommandModule = { readonly commands: Readonly<Record<string, Command>> };

interface Entry {
  readonly summary: string;
  /** Subcommand names for command groups (`key generate|public`). */
  readonly sub?: readonly string[];
  readonly load: () => Promise<CommandModule>;
}

const COMMANDS: Readonly<Record<string, Entry>> = {
  key: {
    summary: 'generate a signing key, or print the public key of one',
    sub: ['generate', 'public'],
    load: () => import('./commands/key.js'),
  },
  hash: {
    summary: 'hash a file tree as a NAR (like `nix hash path`) or a flat file',
    sub: ['path', 'file'],
    load: () => import('./commands/hash.js'),
  },
  nar: {
    summary: 'create, list, read and unpack NAR archives',
    sub: ['dump', 'ls', 'cat', 'restore'],
    load: () => import('./commands/nar.js'),
  },
  narinfo: {
    summary: 'show, fingerprint and verify .narinfo files',
    sub: ['show', 'fingerprint', 'verify'],
    load: () => import('./commands/narinfo.js'),
  },
  init: {
    summary: 'create a binary cache (bucket, nix-cache-info, policies)',
    load: () => import('./commands/init.js'),
  },
  push: {
    summary: 'upload store paths (with their closures) to a cache',
    load: () => import('./commands/push.js'),
  },
  verify: {
    summary: 'check the signatures and contents of a cache',
    load: () => import('./commands/verify.js'),
  },
  copy: {
    summary: 'copy paths (with their closures) between caches',
    load: () => import('./commands/copy.js'),
  },
  sign: {
    summary: "add signatures to narinfos in a cache, or remove a retired key's",
    load: () => import('./commands/sign.js'),
  },
  lint: {
    summary: 'report (and --fix) narinfo quirks that clients trip over',
    load: () => import('./commands/lint.js'),
  },
  'path-info': {
    summary: 'show what a cache knows about store paths',
    load: () => import('./commands/path-info.js'),
  },
  pin: {
    summary: 'name store paths gc must keep (stored in the cache)',
    sub: ['add', 'list', 'rm'],
    load: () => import('./commands/pin.js'),
  },
  gc: {
    summary: 'delete what no pin, root or recent push needs',
    load: () => import('./commands/gc.js'),
  },
  repair: {
    summary: 'fix missing or truncated NARs, missing references, stale uploads',
    load: () => import('./commands/repair.js'),
  },
  report: {
    summary: 'an HTML page (or JSON) of what a cache holds: sizes, closures, ages, holes, gc',
    load: () => import('./commands/report.js'),
  },
};

function mainHelp(version: string): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  const lines = [
    `nixcache ${version}: Nix binary caches without the nix binary`,
    '',
    'Usage: nixcache <command> [options] [arguments]',
    '',
    'Commands:',
  ];
  for (const [name, e] of Object.entries(COMMANDS)) {
    const label = e.sub ? `${name} ${e.sub.join('|')}` : name;
    lines.push(`  ${label.padEnd(width + 22)}${e.summary}`);
  }
  lines.push(
    '',
    'Options for every command:',
    '  -h, --help       show help (nixcache <command> --help)',
    '  --debug          show stack traces and error details',
    '  --version        print the version',
    '',
    'Keys: -k is short for --trusted-public-key (alias --trusted-public-keys) in every command that takes',
    'trusted keys (verify, copy, narinfo verify). Secret key files are --secret-key-file FILE, also spelled',
    '--key-file, in push, copy, sign and key public.',
    '',
    'Exit codes: 0 success; 1 problems found (verify, push failures) or an error; 2 usage error;',
    '130 interrupted (Ctrl-C).',
    '',
    'Store URLs are spelled as in Nix: s3://bucket?endpoint=host&profile=name, file:///dir, https://host.',
    'S3 credentials come from the AWS environment variables, profiles or instance roles.',
    '',
    'Examples:',
    '  $ nixcache key generate --name cache.example.org-1 --out cache.secret',
    "  $ nixcache init --store 's3://nix-cache?endpoint=minio.example.org' --public-read",
    "  $ nixcache push --to 's3://nix-cache?endpoint=minio.example.org' --secret-key-file cache.secret ./result",
  );
  return `${lines.join('\n')}\n`;
}

function groupHelp(name: string, entry: Entry, module: CommandModule): string {
  const lines = [`nixcache ${name}: ${entry.summary}`, '', 'Commands:'];
  for (const [full, c] of Object.entries(module.commands))
    lines.push(`  nixcache ${full.padEnd(22)}${c.spec.summary}`);
  lines.push('', `Run 'nixcache ${name} <command> --help' for the options of each.`);
  return `${lines.join('\n')}\n`;
}

/** ` (did you mean push?)` for a near miss, else ''. */
function didYouMean(word: string, candidates: readonly string[]): string {
  const near = nearest(word, candidates);
  return near === undefined ? '' : ` (did you mean ${near}?)`;
}

/** Whether `--debug` appears before a `--`. */
function wantsDebug(argv: readonly string[], env: CliContext['env']): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--debug') || env.NIXCACHE_DEBUG === '1';
}

function describeError(e: unknown, debug: boolean): string {
  if (debug) {
    const parts: string[] = [];
    let cur: unknown = e;
    for (let depth = 0; cur !== undefined && depth < 8; depth++) {
      const err = cur as Error & { data?: unknown };
      parts.push(depth === 0 ? (err.stack ?? String(err)) : `caused by: ${err.stack ?? String(err)}`);
      if (err instanceof NixcacheError && Object.keys(err.data).length) {
        parts.push(`  data: ${JSON.stringify(err.data)}`);
      }
      cur = err.cause;
    }
    return safeDiagnostic(parts.join('\n'));
  }
  const message = e instanceof Error ? e.message : String(e);
  return safeMessage(`${message}${errorHint(message)}`);
}

/**
 * Runs the CLI with `argv` (the words after `nixcache`) and returns the exit code.
 *
 * @example process.exitCode = await runCli(process.argv.slice(2), ctx)
 */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const debug = wantsDebug(argv, ctx.env);
  // Before anything can fail: a key or password on the command line is never printed back.
  registerCommandLineSecrets(argv, ctx.env);
  const words = argv.filter((a, i) => a !== '--debug' || (argv.indexOf('--') >= 0 && i > argv.indexOf('--')));
  let commandName: string | undefined;
  try {
    const first = words[0];
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      const topic = first === 'help' ? words[1] : undefined;
      if (topic !== undefined) return runCli([topic, ...words.slice(2), '--help'], ctx);
      await write(first === undefined ? ctx.stderr : ctx.stdout, mainHelp(ctx.version));
      return first === undefined ? EXIT.usage : EXIT.ok;
    }
    if (first === '--version' || first === '-V') {
      await write(ctx.stdout, `nixcache ${ctx.version}\n`);
      return EXIT.ok;
    }
    const entry = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
    if (!entry) {
      throw new UsageError(
        first.startsWith('-')
          ? `unknown option '${first}' (the command comes first: nixcache <command> [options])`
          : `unknown command '${first}'${didYouMean(first, Object.keys(COMMANDS))}`,
      );
    }
    const module = await entry.load();
    let rest = words.slice(1);
    let command: Command | undefined;
    if (entry.sub) {
      const sub = rest[0];
      if (sub === undefined || sub === '--help' || sub === '-h') {
        await write(sub === undefined ? ctx.stderr : ctx.stdout, groupHelp(first, entry, module));
        return sub === undefined ? EXIT.usage : EXIT.ok;
      }
      commandName = `${first} ${sub}`;
      command = module.commands[commandName];
      if (!command) {
        commandName = first;
        const near = nearest(sub, entry.sub);
        throw new UsageError(
          `unknown command '${first} ${sub}' (${near ? `did you mean '${first} ${near}'? ` : ''}expected ${entry.sub.join(', ')})`,
          first,
        );
      }
      rest = rest.slice(1);
    } else {
      commandName = first;
      command = module.commands[first];
    }
    if (!command) throw new Error(`internal error: command ${first} is not registered`);
    const args = parseCommand(command.spec, rest);
    if (args.help) {
      await write(ctx.stdout, formatHelp(command.spec));
      return EXIT.ok;
    }
    const code = await command.run(args, ctx);
    if (ctx.signal.aborted) {
      ctx.stderr.write('nixcache: interrupted\n');
      return EXIT.interrupted;
    }
    return code;
  } catch (e) {
    if (ctx.signal.aborted) {
      ctx.stderr.write('nixcache: interrupted\n');
      if (debug) ctx.stderr.write(`${describeError(e, true)}\n`);
      return EXIT.interrupted;
    }
    if ((e as NodeJS.ErrnoException)?.code === 'EPIPE') return EXIT.ok;
    if (e instanceof UsageError) {
      const where = e.command ?? commandName;
      const hint = where ? ` (see 'nixcache ${where} --help')` : " (see 'nixcache --help')";
      ctx.stderr.write(`nixcache: ${where ? `${where}: ` : ''}${safeMessage(e.message)}${hint}\n`);
      return EXIT.usage;
    }
    ctx.stderr.write(`nixcache: ${describeError(e, debug)}\n`);
    return EXIT.problems;
  }
}
