#!/usr/bin/env node
/**
 * The `nixcache` executable (package.json `bin`): wires the process (argv, streams, environment,
 * Ctrl-C) to the command dispatcher in run.ts. The first Ctrl-C aborts the running operation
 * through its AbortSignal (the library writes narinfos last, so no narinfo is left without its
 * NAR) and exits with 130; a second Ctrl-C exits at once.
 */
import { readFileSync } from 'node:fs';
import { runCli } from './run.js';
import { safeMessage } from './safe-text.js';

function packageVersion(): string {
  try {
    // dist/cli/main.js and src/cli/main.ts both sit two levels below package.json.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

// Warnings are one line each; the AWS SDK's notice about future Node versions is not for CLI users.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name === 'NodeVersionSupportWarning' || /NodeVersionSupportWarning/.test(w.message)) return;
  process.stderr.write(`nixcache: warning: ${safeMessage(`${w.name}: ${w.message}`)}\n`);
});

const controller = new AbortController();
let interrupts = 0;
let signalCode: number | undefined;
const onSignal = (signal: NodeJS.Signals, code: number) => {
  interrupts++;
  signalCode = code;
  if (interrupts > 1) process.exit(code);
  controller.abort(new Error(`interrupted by ${signal}`));
  // If an operation does not unwind promptly, do not hang: leave anyway.
  setTimeout(() => process.exit(code), 10_000).unref();
};
process.on('SIGINT', () => onSignal('SIGINT', 130));
process.on('SIGTERM', () => onSignal('SIGTERM', 143));
// A closed pipe (`nixcache nar dump x | head`) is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: controller.signal,
  version: packageVersion(),
});
process.exitCode = signalCode ?? code;
// Idle sockets of an S3 client must not keep a finished command alive.
setTimeout(() => process.exit(process.exitCode), 2_000).unref();
