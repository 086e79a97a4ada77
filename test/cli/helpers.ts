/**
 * Running the `nixcache` CLI as a subprocess in tests: from the TypeScript sources through tsx
 * (no build needed) or from the built dist/, always asynchronously so that servers the test runs
 * in its own process can answer.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeNix32 } from '../../src/nix32.js';
import { repoRoot } from '../helpers/env.js';

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
export const sourceEntry = join(repoRoot, 'src', 'cli', 'main.ts');
export const distEntry = join(repoRoot, 'dist', 'cli', 'main.js');

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** stdout as bytes (for binary output such as `nar dump`). */
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly input?: string | Uint8Array;
  readonly cwd?: string;
  /** Run dist/cli/main.js instead of the sources. */
  readonly dist?: boolean;
}

/** Command and arguments that start the CLI. */
export function cliCommand(dist = false): string[] {
  return dist ? [process.execPath, distEntry] : [process.execPath, '--import', tsxLoader, sourceEntry];
}

/** Starts the CLI; the caller owns the child process. */
export function spawnCli(args: readonly string[], options: RunOptions = {}) {
  const [cmd, ...pre] = cliCommand(options.dist);
  return spawn(cmd!, [...pre, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, NIXCACHE_DEBUG: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs the CLI to completion. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.end(options.input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr });
    });
  });
}

/** A syntactically valid store path hash part made from a seed byte (not content-addressed). */
export function fakeHashPart(seed: number): string {
  return encodeNix32(new Uint8Array(20).fill(seed));
}

/**
 * Adds an input-addressed (not content-addressed) path to a store directory: its trust then
 * rests on signatures alone.
 */
export async function addPlainPath(
  storeDir: string,
  seed: number,
  name: string,
  files: Readonly<Record<string, string | Uint8Array>>,
): Promise<string> {
  const base = `${fakeHashPart(seed)}-${name}`;
  for (const [rel, contents] of Object.entries(files)) {
    const file = join(storeDir, base, rel);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, contents);
  }
  return `/nix/store/${base}`;
}
