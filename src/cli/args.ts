/**
 * Command-line parsing on `node:util` parseArgs: each command declares its options once, and the
 * same declaration produces the parser, the `--help` text and the usage errors (exit 2).
 */
import { parseArgs } from 'node:util';
import { UsageError } from './context.js';

/** One option of a command. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** Repeatable (`--trusted-public-key A --trusted-public-key B`). */
  readonly multiple?: boolean;
  /** Placeholder shown in help (`URL`, `FILE`, `N`). */
  readonly value?: string;
  readonly help: string;
  /**
   * Other long names that mean the same option (Nix's spelling, or another verb's): their values
   * count as this option's.
   */
  readonly aliases?: readonly string[];
  /** Other one-letter names (`-r` next to `--recursive`). */
  readonly shortAliases?: readonly string[];
}

/** What a command is: its name, its synopsis, its options and its examples. */
export interface CommandSpec {
  /** `push`, `key generate`, … */
  readonly name: string;
  readonly summary: string;
  /** Synopsis lines after `nixcache <name>`. */
  readonly usage: readonly string[];
  /** Paragraphs of explanation (shown in `--help`). */
  readonly details?: readonly string[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly examples: readonly string[];
  /** Positional arguments: at least `min`, at most `max` (default unlimited). */
  readonly positionals?: { readonly min?: number; readonly max?: number; readonly name?: string };
}

/** Options every command understands. */
const COMMON: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  debug: { type: 'boolean', help: 'show stack traces and error details' },
};

export type OptionValues = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `word` when it is close enough to be a typo (at most a third of its
 * letters off, and at most 3), else undefined.
 *
 * @example nearest('pussh', ['push', 'verify']) // 'push'
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const allowed = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  if (word.length >= 3) {
    // A prefix of a longer name (`--secret-key` for `--secret-key-file`), or a longer spelling.
    const prefixed = candidates.filter((c) => c.startsWith(word) || word.startsWith(c));
    if (prefixed.length === 1) return prefixed[0];
  }
  return bestDistance <= allowed ? best : undefined;
}

/** Parsed arguments with typed accessors that raise usage errors. */
export interface ParsedArgs {
  readonly help: boolean;
  readonly values: OptionValues;
  readonly positionals: readonly string[];
  /** A string option's value (the last one when repeated). */
  string(name: string): string | undefined;
  /** A required string option. */
  required(name: string): string;
  /** Every value of a repeatable string option. */
  strings(name: string): string[];
  flag(name: string): boolean;
  /** An integer option within bounds. */
  integer(name: string, min?: number, max?: number): number | undefined;
}

function unknownOptionHint(option: string, spec: CommandSpec): string {
  const names = Object.entries({ ...COMMON, ...spec.options }).flatMap(([n, o]) => [n, ...(o.aliases ?? [])]);
  if (option === '-k')
    return ` (-k is short for --trusted-public-key, which '${spec.name}' does not take; a signing key file is --secret-key-file FILE)`;
  if (!option.startsWith('--')) return '';
  const near = nearest(option.slice(2).replace(/=.*$/, ''), names);
  return near === undefined ? '' : ` (did you mean --${near}?)`;
}

function describeParseError(e: unknown, spec: CommandSpec): UsageError {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  const option = /'(-[^'\s]*)/.exec(msg)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(
        `unknown option '${option ?? msg}'${option ? unknownOptionHint(option, spec) : ''}`,
        spec.name,
      );
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(msg)) return new UsageError(`option '${option}' needs a value`, spec.name);
      if (/ambiguous/.test(msg)) {
        return new UsageError(
          `option '${option}' needs a value (to give one that starts with '-', write ${option}=VALUE)`,
          spec.name,
        );
      }
      return new UsageError(`option '${option}' does not take a value`, spec.name);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError('too many arguments', spec.name);
    default:
      return new UsageError(msg, spec.name);
  }
}

/**
 * Parses `argv` (the words after the command name) against `spec`.
 *
 * @throws {UsageError} for unknown options, missing values or a wrong number of arguments.
 */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const all = { ...COMMON, ...spec.options };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  /** parseArgs name → the option it spells. */
  const canonical = new Map<string, string>();
  for (const [name, o] of Object.entries(all)) {
    const names = [name, ...(o.aliases ?? [])];
    names.forEach((n, i) => {
      canonical.set(n, name);
      options[n] = {
        type: o.type,
        ...(i === 0 && o.short !== undefined && { short: o.short }),
        multiple: true,
      };
    });
    (o.shortAliases ?? []).forEach((short, i) => {
      const n = `${name}\0${i}`;
      canonical.set(n, name);
      options[n] = { type: o.type, short, multiple: true };
    });
  }
  // `--parallelism -3`: a negative number is the value of a string option, not an option, so that
  // it gets the option's range error instead of "needs a value".
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const long = a.startsWith('--') ? canonical.get(a.slice(2)) : undefined;
    if (long !== undefined && all[long]?.type === 'string' && next !== undefined && /^-[0-9]/.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; tokens: true; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    throw describeParseError(e, spec);
  }
  // Merge aliases into their option, in command-line order; a single-valued option may be given
  // once only (taking the last one silently hid mistakes such as two --to).
  const merged: Record<string, (string | boolean)[]> = {};
  const spellings = new Map<string, string[]>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    const name = canonical.get(t.name) ?? t.name;
    const o = all[name]!;
    merged[name] = [...(merged[name] ?? []), o.type === 'string' ? (t.value ?? '') : true];
    spellings.set(name, [...(spellings.get(name) ?? []), t.rawName]);
  }
  for (const [name, spelled] of spellings) {
    const o = all[name]!;
    if (o.type === 'string' && !o.multiple && spelled.length > 1) {
      const how = [...new Set(spelled)].map((x) => `'${x}'`).join(' and ');
      throw new UsageError(`option --${name} is given more than once (as ${how}); give it once`, spec.name);
    }
  }
  const values: Record<string, string | boolean | (string | boolean)[] | undefined> = {};
  for (const [name, list] of Object.entries(merged))
    values[name] = all[name]!.multiple ? list : list[list.length - 1];
  const positionals = parsed.positionals;
  const help = values.help === true;
  if (!help) {
    const min = spec.positionals?.min ?? 0;
    const max = spec.positionals?.max ?? Number.POSITIVE_INFINITY;
    const what = spec.positionals?.name ?? 'argument';
    if (positionals.length < min) throw new UsageError(`missing ${what}`, spec.name);
    if (positionals.length > max) {
      throw new UsageError(
        max === 0 ? 'takes no arguments' : `too many arguments (expected ${what})`,
        spec.name,
      );
    }
  }
  const last = (name: string): string | boolean | undefined => {
    const v = values[name];
    return Array.isArray(v) ? v[v.length - 1] : v;
  };
  return {
    help,
    values,
    positionals,
    string(name) {
      const v = last(name);
      return typeof v === 'string' ? v : undefined;
    },
    required(name) {
      const v = last(name);
      if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${name}`, spec.name);
      return v;
    },
    strings(name) {
      const v = values[name];
      if (v === undefined) return [];
      return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
    },
    flag(name) {
      return last(name) === true;
    },
    integer(name, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) {
      const v = last(name);
      if (typeof v !== 'string') return undefined;
      if (!/^-?[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min || Number(v) > max) {
        const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
        throw new UsageError(
          `--${name} expects a whole number ${range}, got ${JSON.stringify(v)}`,
          spec.name,
        );
      }
      return Number(v);
    },
  };
}

/** Renders `nixcache <command> --help`. */
export function formatHelp(spec: CommandSpec): string {
  const lines: string[] = [`nixcache ${spec.name}: ${spec.summary}`, '', 'Usage:'];
  for (const u of spec.usage) lines.push(`  nixcache ${spec.name} ${u}`.trimEnd());
  for (const d of spec.details ?? []) lines.push('', ...wrap(d, 96));
  const all = Object.entries({ ...spec.options, ...COMMON });
  if (all.length) {
    lines.push('', 'Options:');
    const rows = all.map(([name, o]) => {
      const shorts = [o.short, ...(o.shortAliases ?? [])].filter((x) => x !== undefined);
      const flag = `${shorts.length ? `-${shorts[0]}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
      const also = [...shorts.slice(1).map((x) => `-${x}`), ...(o.aliases ?? []).map((a) => `--${a}`)];
      return [
        flag,
        `${o.help}${o.multiple ? ' (repeatable)' : ''}${also.length ? ` (also ${also.join(', ')})` : ''}`,
      ] as const;
    });
    const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)) + 2);
    for (const [flag, text] of rows) {
      const pad = flag.length + 2 > width ? `\n  ${' '.repeat(width)}` : ' '.repeat(width - flag.length);
      lines.push(`  ${flag}${pad}${text}`);
    }
  }
  if (spec.examples.length) {
    lines.push('', 'Examples:');
    for (const e of spec.examples) lines.push(e.startsWith('#') ? `  ${e}` : `  $ ${e}`);
  }
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      out.push(`  ${line}`);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(`  ${line}`);
  return out;
}
