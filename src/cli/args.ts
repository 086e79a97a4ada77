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

function describeParseError(e: unknown, spec: CommandSpec): UsageError {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  const option = /'(-[^'\s]*)/.exec(msg)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option '${option ?? msg}'`, spec.name);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(msg)) return new UsageError(`option '${option}' needs a value`, spec.name);
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
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries({ ...COMMON, ...spec.options })) {
    options[name] = {
      type: o.type,
      ...(o.short !== undefined && { short: o.short }),
      ...(o.multiple && { multiple: true }),
    };
  }
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (e) {
    throw describeParseError(e, spec);
  }
  const { values, positionals } = parsed;
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
      const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
      return [flag, `${o.help}${o.multiple ? ' (repeatable)' : ''}`] as const;
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
