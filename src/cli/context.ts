/**
 * What every CLI command gets: its output streams, standard input, environment and the abort
 * signal Ctrl-C fires, plus the one error type that means "the command line was wrong" (exit 2).
 * Commands never touch `process` directly, so the quick start can run them in-process.
 */
import type { Readable, Writable } from 'node:stream';
import { escapeTerminal } from './safe-text.js';

/** A writable output stream; `isTTY` decides whether progress bars are drawn. */
export type Output = Writable & { readonly isTTY?: boolean; readonly columns?: number };

/** The world a command runs in. */
export interface CliContext {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: Readable & { readonly isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Fired by SIGINT (Ctrl-C); every long operation receives it. */
  readonly signal: AbortSignal;
  /** The package version, for `--version`. */
  readonly version: string;
}

/** Exit codes: success, problems found (or a runtime failure), usage error, interrupted. */
export const EXIT = { ok: 0, problems: 1, usage: 2, interrupted: 130 } as const;

/**
 * A mistake on the command line (unknown flag, missing argument, bad value): exit code 2.
 *
 * @example throw new UsageError('push needs --to URL', 'push')
 */
export class UsageError extends Error {
  /** The command whose `--help` the message points to. */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/**
 * Writes text (or bytes) and waits for the stream to accept it, so large outputs keep
 * backpressure and `EPIPE` surfaces as an error instead of a crash. Text is human or JSON output
 * and may hold untrusted data (narinfo fields, NAR file names): its control characters are
 * escaped (`escapeTerminal`). Bytes (`nar dump`, `nar cat`) are written as they are.
 */
export function write(out: Output, data: string | Uint8Array): Promise<void> {
  if (typeof data === 'string') data = escapeTerminal(data);
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    out.once('error', onError);
    const flushed = out.write(data, (err) => {
      if (err) return;
    });
    const done = () => {
      out.off('error', onError);
      resolve();
    };
    if (flushed) done();
    else out.once('drain', done);
  });
}

/**
 * Writes bytes and resolves once the stream is done with them (its write callback: the bytes are
 * in the file, pipe or socket), so the caller may reuse the buffer for what comes next. One
 * write in flight at a time; `EPIPE` and other failures reject.
 */
export function writeAndRelease(out: Output, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    out.once('error', onError);
    out.write(data, (err) => {
      out.off('error', onError);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** Writes one line. */
export function writeLine(out: Output, line = ''): Promise<void> {
  return write(out, `${line}\n`);
}

/** Writes a JSON document as one line (stable: the shapes are documented in README.md). */
export function writeJson(out: Output, value: unknown): Promise<void> {
  return write(out, `${JSON.stringify(value)}\n`);
}
