/**
 * Running `runCli` in the test's own process, for property tests that run the CLI hundreds of
 * times (a subprocess costs ~300 ms). stdout and stderr are captured; stderr can pretend to be a
 * terminal so that the progress line is drawn.
 */
import { PassThrough, Readable } from 'node:stream';
import type { CliContext, Output } from '../../src/cli/context.js';
import { runCli } from '../../src/cli/run.js';

export interface InProcessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function capture(isTTY: boolean): { out: Output; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (d: string) => {
    text += d;
  });
  Object.assign(stream, { isTTY, columns: 200 });
  return { out: stream as Output, text: () => text };
}

/** Runs the CLI in-process with `argv` and returns its exit code and output. */
export async function runInProcess(
  argv: readonly string[],
  options: { env?: Record<string, string>; input?: string; tty?: boolean } = {},
): Promise<InProcessResult> {
  const stdout = capture(false);
  const stderr = capture(options.tty ?? false);
  const stdin = Readable.from(options.input === undefined ? [] : [Buffer.from(options.input)]);
  const ctx: CliContext = {
    stdout: stdout.out,
    stderr: stderr.out,
    stdin,
    env: { NIXCACHE_NO_PROGRESS: options.tty ? '' : '1', ...options.env },
    signal: new AbortController().signal,
    version: 'test',
  };
  const code = await runCli(argv, ctx);
  await new Promise((r) => setImmediate(r));
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
