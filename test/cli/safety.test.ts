/**
 * Issue 10 items 2 and 3: untrusted text never reaches the terminal raw (escape sequences in a
 * narinfo's `Sig:` line, in NAR file names, in error messages), and no output of the CLI holds a
 * secret key, a URL password or a token, while file paths and store paths stay readable. Property
 * tests run the CLI in-process, so they can try many inputs.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import {
  escapeTerminal,
  redactSecrets,
  registerCommandLineSecrets,
  safeMessage,
} from '../../src/cli/safe-text.js';
import { formatSecretKey, generateSecretKey } from '../../src/signing/keys.js';
import { parseVerifyJson } from '../helpers/verify.js';
import { fileTokens, rawNar } from '../nar/helpers.js';
import { runInProcess } from './inprocess.js';

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

let work: string;
let sample: SampleStore;
let keyFile: string;
let publicKey: string;
let cache: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cli-safety-'));
  await mkdir(join(work, 'store'));
  sample = await makeSampleStore(join(work, 'store'));
  keyFile = join(work, 'k.secret');
  const gen = await runInProcess(['key', 'generate', '--name', 'safety-1', '--out', keyFile]);
  expect(gen.code).toBe(0);
  publicKey = gen.stdout.trim();
  cache = join(work, 'cache');
  const push = await runInProcess([
    'push',
    '--to',
    `file://${cache}`,
    '--secret-key-file',
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

/** Adds a `Sig:` line to the narinfo of hello in the cache. */
async function addSig(sig: string): Promise<string> {
  const hash = sample.hello.slice('/nix/store/'.length, '/nix/store/'.length + 32);
  const file = join(cache, `${hash}.narinfo`);
  const text = await readFile(file, 'utf8');
  const original = text;
  await writeFile(file, `${text}Sig: ${sig}\n`);
  return original;
}

async function restoreNarInfo(text: string): Promise<void> {
  const hash = sample.hello.slice('/nix/store/'.length, '/nix/store/'.length + 32);
  await writeFile(join(cache, `${hash}.narinfo`), text);
}

describe('escape sequences from untrusted data', () => {
  const evil = 'evil\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e:AAAA';

  it('verify, narinfo verify/show, path-info --sigs escape a Sig line', async () => {
    const original = await addSig(evil);
    try {
      const hash = sample.hello.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const narinfo = join(cache, `${hash}.narinfo`);
      const otherKey = 'other-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
      const runs = [
        ['verify', '--store', `file://${cache}`, '-k', otherKey, sample.hello],
        ['verify', '--store', `file://${cache}`, '-k', otherKey, '--all', '--no-contents', '--json'],
        ['narinfo', 'verify', '-k', otherKey, narinfo],
        ['narinfo', 'verify', '-k', otherKey, '--json', narinfo],
        ['narinfo', 'show', narinfo],
        ['narinfo', 'show', '--json', narinfo],
        ['path-info', '--store', `file://${cache}`, '--sigs', sample.hello],
        ['path-info', '--store', `file://${cache}`, '--json', sample.hello],
      ];
      for (const args of runs) {
        const r = await runInProcess(args);
        expect(r.stdout + r.stderr, args.join(' ')).toContain('evil');
        expect(r.stdout, args.join(' ')).not.toMatch(CONTROL);
        expect(r.stderr, args.join(' ')).not.toMatch(CONTROL);
        if (args.includes('--json'))
          expect(() =>
            args[0] === 'verify' ? parseVerifyJson(r.stdout) : JSON.parse(r.stdout),
          ).not.toThrow();
      }
      // The escaped form says what was there.
      const show = await runInProcess(['narinfo', 'verify', '-k', otherKey, narinfo]);
      expect(show.stdout).toContain('evil\\u001b]0;pwned\\u0007');
    } finally {
      await restoreNarInfo(original);
    }
  });

  it('nar ls escapes file names and symlink targets from the archive', async () => {
    const nar = rawNar(
      'nix-archive-1',
      '(',
      'type',
      'directory',
      'entry',
      '(',
      'name',
      'a\x1b[31mred',
      'node',
      ...fileTokens('x'),
      ')',
      ')',
    );
    const file = join(work, 'evil.nar');
    await writeFile(file, nar);
    for (const args of [
      ['nar', 'ls', '-l', file],
      ['nar', 'ls', '--json', file],
    ]) {
      const r = await runInProcess(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('a\\u001b[31mred');
      expect(r.stdout).not.toMatch(CONTROL);
    }
  });

  it('an error message quoting remote text is escaped on stderr', async () => {
    const hash = sample.hello.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const file = join(work, 'bad.narinfo');
    await writeFile(file, `StorePath: /nix/store/${hash}-x\x1b[2Jy\nURL: nar/x.nar\n`);
    const r = await runInProcess(['narinfo', 'show', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(CONTROL);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('property: no output holds a control character from a narinfo line, valid or not', async () => {
    const hostile = fc
      .array(fc.oneof(fc.integer({ min: 0, max: 0x9f }), fc.constantFrom(0x202e, 0x2066, 0x200b)), {
        minLength: 1,
        maxLength: 12,
      })
      .map((cps) => String.fromCodePoint(...cps.filter((c) => c !== 0x0a && c !== 0x0d)));
    const hash = sample.hello.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const narinfo = join(cache, `${hash}.narinfo`);
    const original = await readFile(narinfo, 'utf8');
    try {
      await fc.assert(
        fc.asyncProperty(
          hostile,
          hostile,
          fc.constantFrom('verify', 'narinfo', 'path-info'),
          fc.constantFrom('Sig', 'StorePath', 'URL', 'CA', 'Garbage'),
          async (a, b, cmd, field) => {
            // A hostile Sig parses; hostile other fields make the narinfo fail to parse, and the
            // error message quotes them.
            const text =
              field === 'Sig'
                ? `${original}Sig: k${a}:${b}x\n`
                : field === 'Garbage'
                  ? `${original}${a}: ${b}\n`
                  : original.replace(new RegExp(`^${field}: .*$`, 'm'), `${field}: ${a}${b}`) +
                    (field === 'CA' ? `CA: ${a}\n` : '');
            await writeFile(narinfo, text);
            const args =
              cmd === 'verify'
                ? [
                    'verify',
                    '--store',
                    `file://${cache}`,
                    '-k',
                    publicKey,
                    '--no-contents',
                    '-v',
                    sample.hello,
                  ]
                : cmd === 'narinfo'
                  ? ['narinfo', 'verify', '-k', publicKey, narinfo]
                  : ['path-info', '--store', `file://${cache}`, '--sigs', sample.hello];
            const r = await runInProcess(args);
            expect(r.stdout).not.toMatch(CONTROL);
            expect(r.stderr).not.toMatch(CONTROL);
          },
        ),
        { numRuns: 100 },
      );
    } finally {
      await writeFile(narinfo, original);
    }
  });

  it('escapeTerminal: nothing unsafe survives, and safe text is unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(escapeTerminal(s, true)).not.toMatch(CONTROL);
        expect(escapeTerminal(s)).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
        expect(safeMessage(s)).not.toMatch(/[\n\r\x1b]/);
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[ -~]*$/), (s) => {
        expect(escapeTerminal(s)).toBe(s);
      }),
    );
  });
});

/** A fresh secret key whose base64 has a `+` (about three keys in four do). */
function keyWithPlus(name: string): string {
  for (;;) {
    const text = formatSecretKey(generateSecretKey(name));
    if (text.includes('+')) return text;
  }
}

function expectNoKey(output: string, keyText: string): void {
  const material = keyText.slice(keyText.indexOf(':') + 1);
  expect(output).not.toContain(material);
  expect(output).not.toContain(material.slice(0, 40));
  // Nor the pieces a `+` → space decoding would have made.
  for (const piece of material.split('+')) if (piece.length >= 20) expect(output).not.toContain(piece);
}

describe('secrets never print', () => {
  it('a key with a + given as secret-key= is recognised as a key and not echoed (also with --debug, --json)', async () => {
    const key = keyWithPlus('pasted-1');
    const base = ['--store-dir', join(work, 'store'), sample.hello];
    for (const pre of [[], ['--debug']]) {
      const r = await runInProcess([...pre, 'push', '--to', `file://${work}/c2?secret-key=${key}`, ...base]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/was given a key instead of a file name/);
      expectNoKey(r.stdout + r.stderr, key);
    }
    const copy = await runInProcess([
      'copy',
      '--from',
      `file://${cache}`,
      '--to',
      `file://${work}/c3?secret-key=${key}`,
      '--json',
      sample.hello,
    ]);
    expect(copy.code).toBe(2);
    expectNoKey(copy.stdout + copy.stderr, key);
  });

  it('URL passwords and tokens are not printed; the host still is', async () => {
    for (const url of [
      'http://ci:hunter2secret@127.0.0.1:9/cache',
      'http://tokentokentoken123@127.0.0.1:9',
      's3://cache?endpoint=http://minio:hunter2secret@127.0.0.1:9',
    ]) {
      for (const pre of [[], ['--debug']]) {
        const r = await runInProcess([...pre, 'path-info', '--store', url, sample.hello]);
        expect(r.code, r.stderr).not.toBe(0);
        expect(r.stderr).toContain('127.0.0.1');
        expect(r.stderr).not.toContain('hunter2secret');
        expect(r.stderr).not.toContain('tokentokentoken123');
      }
    }
  }, 30_000);

  it('https://user:pass@host still authenticates (as a header), and the password is not printed', async () => {
    const seen: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.statusCode = 500;
      res.end('boom');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await runInProcess([
        'path-info',
        '--store',
        `http://ci:hunter2secret@127.0.0.1:${port}`,
        sample.hello,
      ]);
      expect(r.code).toBe(1);
      expect(seen[0]).toBe(`Basic ${Buffer.from('ci:hunter2secret').toString('base64')}`);
      expect(r.stderr).toContain(`127.0.0.1:${port}`);
      expect(r.stderr).not.toContain('hunter2secret');
    } finally {
      server.close();
    }
  });

  it('AWS secrets from the environment are redacted from messages', () => {
    const aws = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    registerCommandLineSecrets([], { AWS_SECRET_ACCESS_KEY: aws, AWS_SESSION_TOKEN: 'tok-abcdef123' });
    expect(safeMessage(`signature for ${aws} failed, token tok-abcdef123`)).toBe(
      'signature for [redacted] failed, token [redacted]',
    );
  });

  it('a key file path is shown in full, not [redacted]', async () => {
    const dir = join(work, 'Secrets', 'NixBuilderKeysForProductionDeployments', 'CacheSigningKeyFiles');
    const missing = join(dir, 'ProductionCacheSigningKeyNumberOne.secret');
    const r = await runInProcess(['sign', '--store', `file://${cache}`, '--key-file', missing, '--all']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).not.toContain('[redacted]');
  });

  it('property: no error, warning or --debug output holds a key given anywhere on the command line', async () => {
    const where = fc.constantFrom('url', 'file-option', 'trusted-key', 'url-secret-keys');
    await fc.assert(
      fc.asyncProperty(where, fc.boolean(), fc.integer(), async (place, debug, n) => {
        const key = formatSecretKey(generateSecretKey(`prop-${n}`));
        const to = `file://${work}/p`;
        const argv =
          place === 'url'
            ? ['push', '--to', `${to}?secret-key=${key}`, sample.hello]
            : place === 'url-secret-keys'
              ? ['push', '--to', `${to}?secret-keys=/x,${key}&frob=${key}`, sample.hello]
              : place === 'file-option'
                ? ['copy', '--from', to, '--to', to, '--secret-key-file', key, sample.hello]
                : ['verify', '--store', to, '-k', key, '--all'];
        const r = await runInProcess(debug ? ['--debug', ...argv] : argv);
        expect(r.code).not.toBe(0);
        expectNoKey(r.stdout + r.stderr, key);
      }),
      { numRuns: 40 },
    );
  });

  it('redactSecrets keeps store paths, hashes and paths, and removes key text', () => {
    const key = formatSecretKey(generateSecretKey('cache.example.org-1'));
    const path = '/nix/store/syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin';
    const sha = 'sha256:1b4sb93wp679q4zx9k1ignby1yna3z7c4c2ri3wphylbc2dwsys0';
    expect(redactSecrets(`${path} ${sha} /home/Me/Work/Keys/a.secret`)).toBe(
      `${path} ${sha} /home/Me/Work/Keys/a.secret`,
    );
    expect(redactSecrets(`bad key ${key} here`)).toBe('bad key cache.example.org-1:[redacted] here');
    fc.assert(
      fc.property(fc.integer(), fc.string(), fc.string(), (n, before, after) => {
        const k = formatSecretKey(generateSecretKey(`k${n}`));
        const out = redactSecrets(`${before}${k}${after}`);
        expect(out).not.toContain(k.slice(k.indexOf(':') + 1));
      }),
      { numRuns: 200 },
    );
  });
});

describe('fixture sanity', () => {
  it('the cache holds hello', async () => {
    expect((await readdir(cache)).some((f) => f.endsWith('.narinfo'))).toBe(true);
  });
});
