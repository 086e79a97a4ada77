/**
 * Bad input to the CLI: each mistake is one clear line on stderr with the right exit code (2 for
 * usage errors, 1 for problems found at run time), a stack trace only with `--debug`, and the
 * secret key never appears in any output.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { type CliResult, runCli } from './helpers.js';

let work: string;
let sample: SampleStore;
let keyFile: string;
let secret: string;
let publicKey: string;
const outputs: CliResult[] = [];

/** Runs and remembers the output for the secret-leak check. */
async function run(args: string[], env?: Record<string, string>): Promise<CliResult> {
  const r = await runCli(args, env ? { env } : {});
  outputs.push(r);
  return r;
}

function expectOneLine(r: CliResult, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^nixcache: /);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cli-errors-'));
  await mkdir(join(work, 'store'));
  sample = await makeSampleStore(join(work, 'store'));
  keyFile = join(work, 'k.secret');
  publicKey = (await runCli(['key', 'generate', '--name', 'leak-1', '--out', keyFile])).stdout.trim();
  secret = (await readFile(keyFile, 'utf8')).trim();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('usage errors exit 2 with one line', () => {
  it('unknown command, unknown option, missing value, missing required option, missing arguments', async () => {
    expectOneLine(await run(['frobnicate']), 2, /unknown command 'frobnicate'/);
    expectOneLine(
      await run(['push', '--frob']),
      2,
      /^nixcache: push: unknown option '--frob' \(see 'nixcache push --help'\)$/m,
    );
    expectOneLine(await run(['push', '--to']), 2, /option '--to' needs a value/);
    expectOneLine(await run(['push', sample.hello]), 2, /push: missing --to/);
    expectOneLine(await run(['push', '--to', 'file:///tmp/x']), 2, /push: missing PATH/);
    expectOneLine(
      await run(['verify', '--store', 'file:///tmp/x', '--all']),
      2,
      /give at least one --trusted-public-key/,
    );
    expectOneLine(
      await run(['verify', '--store', 'file:///tmp/x', '-k', publicKey]),
      2,
      /give the paths to check, or --all/,
    );
    expectOneLine(
      await run(['init', '--store', 'file:///tmp/x', '--expire-days', '0']),
      2,
      /--expire-days expects a whole number >= 1/,
    );
    expectOneLine(await run(['nar', 'ls']), 2, /missing NAR \[PATH\]/);
    expectOneLine(
      await run(['push', '--to', 'file:///tmp/x', 'not-a-store-path']),
      2,
      /'not-a-store-path' is not a store path/,
    );
  });

  it('an unknown store scheme is a usage error naming the option', async () => {
    expectOneLine(
      await run(['push', '--to', 'ftp://cache.example.org', sample.hello]),
      2,
      /push: --to: unsupported store URL scheme 'ftp:\/\/'/,
    );
    expectOneLine(
      await run(['verify', '--store', 's3://Bad_Bucket', '-k', publicKey, '--all']),
      2,
      /invalid S3 bucket name/,
    );
  });

  it('a malformed trusted key is a usage error that does not echo the key', async () => {
    expectOneLine(
      await run(['verify', '--store', 'file:///tmp/x', '-k', 'nonsense', '--all']),
      2,
      /not of the form <name>:<base64>/,
    );
    // A secret key passed where a public key belongs: rejected without printing it.
    const r = await run(['verify', '--store', 'file:///tmp/x', '-k', secret, '--all']);
    expectOneLine(r, 2, /public key "leak-1" has 64 bytes, expected 32/);
  });

  it('a key given where a key file belongs is refused without echoing it', async () => {
    const r = await run([
      'push',
      '--to',
      `file://${work}/c`,
      '--secret-key-file',
      secret,
      '--store-dir',
      join(work, 'store'),
      sample.hello,
    ]);
    expectOneLine(r, 2, /was given a key instead of a file name/);
  });
});

describe('run-time errors exit 1 with one line', () => {
  it('a missing or malformed secret key file', async () => {
    const args = ['push', '--to', `file://${work}/c`, '--store-dir', join(work, 'store'), sample.hello];
    expectOneLine(
      await run([...args, '--secret-key-file', join(work, 'missing.secret')]),
      1,
      /cannot read secret key file '.*missing\.secret': no such file/,
    );
    const bad = join(work, 'bad.secret');
    await writeFile(bad, 'leak-1:AAAA\n');
    expectOneLine(
      await run([...args, '--secret-key-file', bad]),
      1,
      /secret key file '.*bad\.secret': secret key "leak-1" has 3 bytes, expected 64/,
    );
    // Through the URL's secret-key parameter, as Nix spells it.
    expectOneLine(
      await run([
        'push',
        '--to',
        `file://${work}/c?secret-key=${join(work, 'missing.secret')}`,
        '--store-dir',
        join(work, 'store'),
        sample.hello,
      ]),
      1,
      /cannot read secret key file/,
    );
    expectOneLine(
      await run(['sign', '--store', `file://${work}/c`, '--key-file', bad, '--all']),
      1,
      /secret key file/,
    );
  });

  it('an unreachable endpoint (http and s3)', async () => {
    expectOneLine(
      await run(['path-info', '--store', 'http://127.0.0.1:9', sample.hello]),
      1,
      /http:\/\/127\.0\.0\.1:9/,
    );
    expectOneLine(
      await run(['verify', '--store', 'http://127.0.0.1:9', '-k', publicKey, sample.hello]),
      1,
      /127\.0\.0\.1:9/,
    );
    const s3 = await run(
      [
        'push',
        '--to',
        's3://nix-cache?endpoint=http://127.0.0.1:9&region=us-east-1',
        '--store-dir',
        join(work, 'store'),
        sample.hello,
      ],
      { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' },
    );
    expectOneLine(s3, 1, /s3:\/\/nix-cache.*(ECONNREFUSED|connect).*127\.0\.0\.1:9/);
  }, 60_000);

  it('--debug adds the stack trace and error data', async () => {
    const r = await run([
      '--debug',
      'sign',
      '--store',
      `file://${work}/c`,
      '--key-file',
      join(work, 'missing.secret'),
      '--all',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nixcache: NixcacheError: cannot read secret key file/);
    expect(r.stderr).toMatch(/\n\s+at /);
    expect(r.stderr).toMatch(/caused by: Error: ENOENT/);
  });
});

describe('secrets', () => {
  it('the secret key never appears in the output of push, verify, sign, copy, path-info or errors', async () => {
    const url = `file://${work}/cache`;
    const store = join(work, 'store');
    const runs = [
      ['push', '--to', url, '--secret-key-file', keyFile, '--store-dir', store, sample.hello],
      [
        'push',
        '--to',
        `${url}?secret-key=${keyFile}`,
        '--store-dir',
        store,
        '--force',
        '--json',
        '-v',
        sample.hello,
      ],
      ['verify', '--store', url, '-k', publicKey, '--all', '--json'],
      ['verify', '--store', url, '-k', publicKey, '--all', '-v'],
      ['sign', '--store', url, '--key-file', keyFile, '--all'],
      ['sign', '--store', url, '--key-file', keyFile, '--all', '--json'],
      ['copy', '--from', url, '--to', `file://${work}/copy?secret-key=${keyFile}`, '--json', sample.hello],
      [
        'copy',
        '--from',
        url,
        '--to',
        `file://${work}/copy2`,
        '--secret-key-file',
        keyFile,
        '-v',
        sample.hello,
      ],
      ['path-info', '--store', url, '--json', '--sigs', sample.hello],
      ['--debug', 'push', '--to', 'ftp://x', '--secret-key-file', keyFile, sample.hello],
      ['key', 'public', '--key-file', keyFile],
    ];
    for (const args of runs) {
      const r = await run(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(args.includes('ftp://x') ? 2 : 0);
    }
    const material = secret.slice(secret.indexOf(':') + 1);
    expect(material.length).toBe(88);
    for (const r of outputs) {
      for (const text of [r.stdout, r.stderr]) {
        expect(text).not.toContain(material);
        // Not even the seed alone (the first 42 base64 characters encode the first 31 bytes).
        expect(text).not.toContain(material.slice(0, 42));
      }
    }
    expect(outputs.length).toBeGreaterThan(25);
  });
});
