/**
 * Command-line UX (issue 10 item 14): range errors for negative numbers, a repeated single-valued
 * option is a usage error, Nix's spellings and the other verbs' spellings are accepted, typos get
 * a suggestion, key names with ':' are refused, path-info accepts every path form push does and
 * reports an unreadable narinfo for its path only, and a bad compression= is a usage error.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { nearest } from '../../src/cli/args.js';
import { fileTokens, rawNar } from '../nar/helpers.js';
import { runCli } from './helpers.js';
import { runInProcess } from './inprocess.js';

let work: string;
let sample: SampleStore;
let keyFile: string;
let publicKey: string;
let cache: string;
const hashOf = (p: string) => p.slice('/nix/store/'.length, '/nix/store/'.length + 32);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cli-flags-'));
  await mkdir(join(work, 'store'));
  sample = await makeSampleStore(join(work, 'store'));
  keyFile = join(work, 'k.secret');
  publicKey = (
    await runInProcess(['key', 'generate', '--key-name', 'flags-1', '--out', keyFile])
  ).stdout.trim();
  cache = `file://${join(work, 'cache')}`;
  // --key-file is accepted by push as well as --secret-key-file.
  const push = await runInProcess([
    'push',
    '--to',
    cache,
    '--key-file',
    keyFile,
    '--store-dir',
    join(work, 'store'),
    sample.hello,
  ]);
  expect(push.code, push.stderr).toBe(0);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function usage(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(pattern);
}

describe('option parsing', () => {
  it('a negative number gets the range error, not "does not take a value"', async () => {
    usage(
      await runInProcess(['push', '--to', cache, '--parallelism', '-3', sample.hello]),
      /--parallelism expects a whole number from 1 to 64, got "-3"/,
    );
    usage(
      await runInProcess(['init', '--store', cache, '--expire-days', '-1']),
      /--expire-days expects a whole number >= 1/,
    );
    usage(await runInProcess(['push', '--to', '--json', sample.hello]), /option '--to' needs a value/);
  });

  it('a repeated single-valued option is a usage error; repeatable ones collect', async () => {
    usage(
      await runInProcess(['push', '--to', cache, '--to', 'file:///tmp/other', sample.hello]),
      /option --to is given more than once/,
    );
    usage(
      await runInProcess(['copy', '--from', cache, '--from', cache, '--to', cache, sample.hello]),
      /option --from is given more than once/,
    );
    const r = await runInProcess([
      'verify',
      '--store',
      cache,
      '-k',
      'other-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      '--trusted-public-keys',
      publicKey,
      '--no-contents',
      sample.hello,
    ]);
    expect(r.code, r.stderr).toBe(0);
  });

  it("accepts Nix's and the other verbs' spellings", async () => {
    const sign = await runInProcess(['sign', '--store', cache, '--secret-key-file', keyFile, sample.hello]);
    expect(sign.code, sign.stderr).toBe(0);
    const pub = await runInProcess(['key', 'public', '--secret-key-file', keyFile]);
    expect(pub.stdout.trim()).toBe(publicKey);
    const copy = await runInProcess([
      'copy',
      '--from',
      cache,
      '--to',
      `file://${join(work, 'copy')}`,
      '-k',
      'nobody-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      '--no-check-sigs',
      '--json',
      sample.hello,
    ]);
    expect(copy.code, copy.stderr).toBe(0);
    expect(JSON.parse(copy.stdout).copied).toHaveLength(3);
    const help = await runInProcess(['sign', '--help']);
    expect(help.stdout).toContain('--secret-key-file');
  });

  it('suggests the nearest verb or option for a typo', async () => {
    usage(await runInProcess(['pussh']), /unknown command 'pussh' \(did you mean push\?\)/);
    usage(await runInProcess(['key', 'genrate']), /did you mean 'key generate'\?/);
    usage(
      await runInProcess(['push', '--secret-key', 'x', sample.hello]),
      /did you mean --secret-key-file\?/,
    );
    usage(await runInProcess(['push', '-k', 'x', sample.hello]), /-k is short for --trusted-public-key/);
    expect(nearest('frobnicate', ['push', 'verify'])).toBeUndefined();
  });

  it('nar restore refuses a TARGET ending in ., .. or / as a usage error', async () => {
    const nar = join(work, 'x.nar');
    await writeFile(nar, rawNar('nix-archive-1', ...fileTokens('x')));
    await mkdir(join(work, 'out'));
    for (const t of ['out/.', 'out/..', 'fresh/']) {
      usage(
        await runInProcess(['nar', 'restore', `${work}/${t}`, '--input', nar]),
        /the target must end in the name of a new file or directory/,
      );
    }
  });

  it('key generate refuses a name with a colon (nobody could read the key back)', async () => {
    usage(await runInProcess(['key', 'generate', '--name', 'a:b']), /--name: .*"a:b" contains ':'/);
  });
});

describe('store URL parameters are usage errors', () => {
  it('an unsupported compression= or an out-of-range compression-level= exits 2 naming the parameter', async () => {
    const base = ['--store-dir', join(work, 'store'), sample.hello];
    usage(
      await runInProcess(['push', '--to', `${cache}2?compression=lz4`, ...base]),
      /--to: invalid value "lz4" for store parameter 'compression'/,
    );
    usage(
      await runInProcess(['push', '--to', `${cache}2?compression=zstd&compression-level=42`, ...base]),
      /store parameter 'compression-level': expected -1 or 1\.\.19 for zstd/,
    );
  });

  it('a scheme-less endpoint warns that http:// may be meant', async () => {
    const r = await runInProcess(['path-info', '--store', 's3://cache?endpoint=127.0.0.1:9', sample.hello], {
      env: { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' },
    });
    expect(r.stderr).toMatch(/warning: .*'endpoint' has no scheme.*endpoint=http:\/\/127\.0\.0\.1:9/);
  }, 30_000);

  it("OpenSSL's 'wrong version number' from a plain-HTTP endpoint comes with a hint", async () => {
    const server = createServer((_q, res) => res.end('plain'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      // A subprocess: the AWS SDK reads credentials from process.env.
      const r = await runCli(
        ['path-info', '--store', `s3://cache?endpoint=127.0.0.1:${port}`, sample.hello],
        {
          env: { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' },
        },
      );
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/wrong version number.*give the endpoint as http:\/\/HOST:PORT/i);
    } finally {
      server.close();
    }
  }, 30_000);
});

describe('path-info', () => {
  it('accepts ./result links, basenames and bare hash parts as push does', async () => {
    const link = join(work, 'result');
    await symlink(join(work, 'store', sample.hello.slice('/nix/store/'.length)), link);
    for (const arg of [link, hashOf(sample.hello), sample.hello.slice('/nix/store/'.length)]) {
      const r = await runInProcess(['path-info', '--store', cache, '--json', arg]);
      expect(r.code, `${arg}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout)[0].path).toBe(sample.hello);
    }
    const pushAgain = await runInProcess([
      'push',
      '--to',
      cache,
      '--store-dir',
      join(work, 'store'),
      '--json',
      hashOf(sample.hello),
    ]);
    expect(JSON.parse(pushAgain.stdout).skipped).toContain(sample.hello);
  });

  it('-r lists the closure and -S adds closure sizes', async () => {
    const r = await runInProcess(['path-info', '--store', cache, '-rS', '--json', sample.hello]);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { path: string; narSize: number; closureSize: number }[];
    expect(rows.map((x) => x.path).sort()).toEqual([sample.data, sample.hello, sample.lib].sort());
    const total = rows.reduce((n, x) => n + x.narSize, 0);
    expect(rows.find((x) => x.path === sample.hello)!.closureSize).toBe(total);
    const human = await runInProcess([
      'path-info',
      '--store',
      cache,
      '--recursive',
      '--closure-size',
      sample.hello,
    ]);
    expect(human.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('one unreadable narinfo is reported for its path; the others are still printed', async () => {
    const file = join(work, 'cache', `${hashOf(sample.lib)}.narinfo`);
    const original = await readFile(file, 'utf8');
    await writeFile(file, 'StorePath: nonsense\n');
    try {
      const r = await runInProcess([
        'path-info',
        '--store',
        cache,
        '--json',
        sample.hello,
        sample.lib,
        sample.data,
      ]);
      expect(r.code).toBe(1);
      const rows = JSON.parse(r.stdout) as { path: string; valid: boolean; error?: { code: string } }[];
      expect(rows).toHaveLength(3);
      expect(rows[0]!.valid).toBe(true);
      expect(rows[1]).toMatchObject({ path: sample.lib, valid: false, error: { code: 'BAD_NARINFO' } });
      expect(rows[2]!.valid).toBe(true);
      const human = await runInProcess(['path-info', '--store', cache, sample.lib, sample.data]);
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/greeting-lib\s+unreadable: /);
    } finally {
      await writeFile(file, original);
    }
  });
});
