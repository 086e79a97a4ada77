/**
 * Every `nixcache` command run as a subprocess against file:// caches and local files: outputs,
 * `--json` shapes and exit codes (0 success, 1 problems found, 2 usage error).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { formatHash } from '../../src/hash/hash.js';
import { dumpPath } from '../../src/nar/node/dump.js';
import { hashPath } from '../../src/nar/node/hash-path.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { repoRoot } from '../helpers/env.js';
import { parseVerifyJson } from '../helpers/verify.js';
import { addPlainPath, runCli } from './helpers.js';

let work: string;
let sample: SampleStore;
let keyFile: string;
let publicKey: string;
let plain: string;

const hashPartOf = (p: string) => p.slice('/nix/store/'.length, '/nix/store/'.length + 32);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cli-'));
  await mkdir(join(work, 'store'));
  sample = await makeSampleStore(join(work, 'store'));
  plain = await addPlainPath(join(work, 'store'), 7, 'plain-tool', { 'bin/tool': '#!/bin/sh\necho tool\n' });
  keyFile = join(work, 'test.secret');
  const gen = await runCli(['key', 'generate', '--name', 'test-1', '--out', keyFile]);
  expect(gen.code).toBe(0);
  publicKey = gen.stdout.trim();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('help and version', () => {
  it('lists every command and exits 0 with --help; 2 without a command', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const c of [
      'key generate|public',
      'hash path|file',
      'nar dump|ls|cat|restore',
      'narinfo show|fingerprint|verify',
    ]) {
      expect(help.stdout).toContain(c);
    }
    for (const c of ['init', 'push', 'verify', 'copy', 'sign', 'lint', 'path-info'])
      expect(help.stdout).toMatch(new RegExp(`\\n  ${c} `));
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: nixcache');
  });

  it('has --help with usage, options and examples on every command', async () => {
    const commands = [
      'key generate',
      'key public',
      'hash path',
      'hash file',
      'nar dump',
      'nar ls',
      'nar cat',
      'nar restore',
      'narinfo show',
      'narinfo fingerprint',
      'narinfo verify',
      'init',
      'push',
      'verify',
      'copy',
      'sign',
      'lint',
      'path-info',
    ];
    await Promise.all(
      commands.map(async (c) => {
        const r = await runCli([...c.split(' '), '--help']);
        expect(r.code, c).toBe(0);
        expect(r.stdout, c).toContain(`nixcache ${c} `);
        expect(r.stdout, c).toContain('Options:');
        expect(r.stdout, c).toMatch(/Examples:\n {2}\$ nixcache /);
      }),
    );
    const group = await runCli(['nar', '--help']);
    expect(group.code).toBe(0);
    expect(group.stdout).toContain('nixcache nar restore');
    expect((await runCli(['help', 'push'])).stdout).toContain('nixcache push: ');
  });

  it('prints the package version', async () => {
    const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`nixcache ${version}\n`);
  });
});

describe('key', () => {
  it('generate writes a 0600 key file, prints the public key, and never overwrites', async () => {
    const st = await stat(keyFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(publicKey).toMatch(/^test-1:[A-Za-z0-9+/]{43}=$/);
    const before = await readFile(keyFile, 'utf8');
    const again = await runCli(['key', 'generate', '--name', 'test-1', '--out', keyFile]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`nixcache: '${keyFile}' already exists; refusing to overwrite a key file\n`);
    expect(await readFile(keyFile, 'utf8')).toBe(before);
  });

  it('generate without --out prints the secret key; public reads --key-file or stdin', async () => {
    const gen = await runCli(['key', 'generate', '--name', 'other-1']);
    expect(gen.code).toBe(0);
    expect(gen.stdout).toMatch(/^other-1:[A-Za-z0-9+/]{86}==\n$/);
    const fromStdin = await runCli(['key', 'public'], { input: gen.stdout });
    const fromFile = await runCli(['key', 'public', '--key-file', keyFile]);
    expect(fromStdin.stdout).toMatch(/^other-1:/);
    expect(fromFile.stdout).toBe(`${publicKey}\n`);
    const bad = await runCli(['key', 'generate', '--name', 'has space']);
    expect(bad.code).toBe(2);
    expect((await runCli(['key', 'generate'])).code).toBe(2);
  });
});

describe('hash', () => {
  it('hash path prints the NAR hash (SRI by default, --base32, --base16)', async () => {
    const path = join(work, 'store', sample.lib.slice('/nix/store/'.length));
    const { hash } = await hashPath(path);
    expect((await runCli(['hash', 'path', path])).stdout).toBe(`${formatHash(hash, 'sri')}\n`);
    expect((await runCli(['hash', 'path', '--base32', path])).stdout).toBe(`${formatHash(hash).slice(7)}\n`);
    const sha512 = await runCli(['hash', 'path', '--type', 'sha512', '--base16', path]);
    expect(sha512.stdout).toBe(
      `${formatHash((await hashPath(path, { algorithm: 'sha512' })).hash, 'base16').slice(7)}\n`,
    );
    expect((await runCli(['hash', 'path', '--base16', '--base32', path])).code).toBe(2);
    expect((await runCli(['hash', 'path', '--type', 'crc32', path])).code).toBe(2);
  });

  it('hash file hashes the bytes', async () => {
    const file = join(work, 'hashme.txt');
    await writeFile(file, 'hash me\n');
    const sha1 = createHash('sha1').update('hash me\n').digest('hex');
    const r = await runCli(['hash', 'file', '--type', 'sha1', '--base16', file, '-'], { input: 'hash me\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${sha1}\n${sha1}\n`);
    const missing = await runCli(['hash', 'file', join(work, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^nixcache: cannot read '.*nope': no such file\n$/);
  });
});

describe('nar', () => {
  let narFile: string;
  let helloDir: string;
  beforeAll(async () => {
    helloDir = join(work, 'store', sample.hello.slice('/nix/store/'.length));
    narFile = join(work, 'hello.nar');
  });

  it('dump of a tree that fills many chunks (which it reuses) writes what dumpPath writes', async () => {
    // Small files fill the growing chunks (16 KiB up to 1 MiB) many times over, and a 3 MiB file
    // takes whole chunks of its own: a chunk reused before stdout had its bytes would show.
    const tree = join(work, 'many-chunks');
    await mkdir(join(tree, 'small'), { recursive: true });
    for (let i = 0; i < 400; i++) {
      await writeFile(
        join(tree, 'small', `f${i}`),
        createHash('sha512')
          .update(String(i))
          .digest()
          .toString('hex')
          .repeat(1 + (i % 40)),
      );
    }
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i += 64) createHash('sha512').update(String(i)).digest().copy(big, i);
    await writeFile(join(tree, 'big'), big);
    const child = await runCli(['nar', 'dump', tree]);
    expect(child.code, child.stderr).toBe(0);
    const parts: Uint8Array[] = [];
    for await (const c of dumpPath(tree)) parts.push(c);
    const expected = Buffer.concat(parts);
    expect(child.stdoutBytes.length).toBe(expected.length);
    expect(child.stdoutBytes.equals(expected)).toBe(true);
  });

  it('dump writes what dumpPath writes; restore unpacks it; ls and cat read it', async () => {
    const child = await runCli(['nar', 'dump', helloDir]);
    expect(child.code).toBe(0);
    const parts: Uint8Array[] = [];
    for await (const c of dumpPath(helloDir)) parts.push(c);
    expect(child.stdoutBytes.equals(Buffer.concat(parts))).toBe(true);
    await writeFile(narFile, child.stdoutBytes);

    const ls = await runCli(['nar', 'ls', '-lR', narFile]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toBe(
      [
        'dr-xr-xr-x                    0 ./bin',
        '-r-xr-xr-x                   89 ./bin/hello',
        'lrwxrwxrwx                    0 ./bin/hi -> hello',
        'dr-xr-xr-x                    0 ./share',
        'dr-xr-xr-x                    0 ./share/empty',
        '',
      ]
        .join('\n')
        .replace(' 89 ', ` ${String((await stat(join(helloDir, 'bin', 'hello'))).size).padStart(2)} `),
    );
    expect((await runCli(['nar', 'ls', narFile, '/bin'])).stdout).toBe('./hello\n./hi\n');
    const json = JSON.parse((await runCli(['nar', 'ls', '--json', '-R', narFile, '/bin'])).stdout);
    expect(json).toEqual({
      type: 'directory',
      entries: {
        hello: { type: 'regular', size: expect.any(Number), executable: true, narOffset: expect.any(Number) },
        hi: { type: 'symlink', target: 'hello' },
      },
    });
    const cat = await runCli(['nar', 'cat', narFile, '/bin/hello']);
    expect(cat.stdout).toBe(await readFile(join(helloDir, 'bin', 'hello'), 'utf8'));
    const notFile = await runCli(['nar', 'cat', narFile, '/bin']);
    expect(notFile.code).toBe(1);
    expect(notFile.stderr).toBe("nixcache: path '/bin' is not a regular file in the NAR\n");
    const missing = await runCli(['nar', 'ls', narFile, '/nope']);
    expect(missing.code).toBe(1);

    const target = join(work, 'restored');
    const restored = await runCli(['nar', 'restore', target, '--input', narFile]);
    expect(restored.code).toBe(0);
    expect(formatHash((await hashPath(target)).hash)).toBe(formatHash((await hashPath(helloDir)).hash));
    const again = await runCli(['nar', 'restore', target, '--input', narFile]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('reads compressed NARs from a cache by their extension', async () => {
    const cache = join(work, 'nar-cache');
    const push = await runCli([
      'push',
      '--to',
      `file://${cache}?compression=zstd`,
      '--store-dir',
      join(work, 'store'),
      '--no-closure',
      sample.data,
    ]);
    expect(push.code).toBe(0);
    const info = parseNarInfo(await readFile(join(cache, `${hashPartOf(sample.data)}.narinfo`), 'utf8'));
    expect(info.url).toMatch(/\.nar\.zst$/);
    const cat = await runCli(['nar', 'cat', join(cache, info.url), '/']);
    expect(cat.stdout).toBe('Hello from a nixcache sample store path!\n');
  });
});

describe('the cache workflow on file://', () => {
  let cache: string;
  let url: string;
  beforeAll(() => {
    cache = join(work, 'cache');
    url = `file://${cache}`;
  });

  it('init, push (closure, signed), push again (skipped), verify, path-info', async () => {
    const init = await runCli(['init', '--store', url, '--priority', '30', '--want-mass-query', '--json']);
    expect(init.code).toBe(0);
    expect(JSON.parse(init.stdout)).toEqual({
      store: url,
      cacheInfo: { storeDir: '/nix/store', wantMassQuery: true, priority: 30 },
      publicRead: false,
      expireDays: null,
    });
    expect(await readFile(join(cache, 'nix-cache-info'), 'utf8')).toBe(
      'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n',
    );
    expect((await runCli(['init', '--store', url, '--public-read'])).code).toBe(1);

    const push = await runCli([
      'push',
      '--to',
      url,
      '--secret-key-file',
      keyFile,
      '--store-dir',
      join(work, 'store'),
      '--json',
      sample.hello,
    ]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    expect(JSON.parse(push.stdout)).toEqual({
      pushed: [sample.data, sample.lib, sample.hello],
      skipped: [],
      upstream: [],
      failed: [],
    });
    const again = await runCli([
      'push',
      '--to',
      url,
      '--secret-key-file',
      keyFile,
      '--store-dir',
      join(work, 'store'),
      sample.hello,
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`pushed 0 paths to ${url}, skipped 1 already there, 0 failed\n`);

    const verify = await runCli([
      'verify',
      '--store',
      url,
      '--trusted-public-key',
      publicKey,
      '--all',
      '--json',
    ]);
    expect(verify.code).toBe(0);
    const result = parseVerifyJson(verify.stdout);
    expect(result.ok).toBe(true);
    expect(result.summary).toEqual({
      total: 3,
      ok: 3,
      untrusted: 0,
      corrupt: 0,
      'missing-nar': 0,
      missing: 0,
      unreadable: 0,
      error: 0,
      narBytes: expect.any(Number),
    });
    expect(result.reports.map((r: { storePath: string }) => r.storePath).sort()).toEqual(
      [sample.data, sample.lib, sample.hello].sort(),
    );
    for (const r of result.reports) {
      expect(Object.keys(r).sort()).toEqual(['hashPart', 'narSize', 'signedBy', 'status', 'storePath']);
      expect(r.signedBy).toEqual(['test-1']);
    }
    const human = await runCli(['verify', '--store', url, '-k', publicKey, sample.hello, sample.lib]);
    expect(human.stdout).toBe(`checked 2 paths in ${url}: 2 ok\n`);

    const missingPath = `/nix/store/${'0'.repeat(32)}-absent`;
    const info = await runCli(['path-info', '--store', url, '--json', sample.hello, missingPath]);
    expect(info.code).toBe(1);
    const [hello, absent] = JSON.parse(info.stdout);
    expect(absent).toEqual({ path: missingPath, valid: false });
    expect(hello).toEqual({
      path: sample.hello,
      valid: true,
      narHash: expect.stringMatching(/^sha256-[A-Za-z0-9+/]{43}=$/),
      narSize: expect.any(Number),
      references: [sample.lib],
      signatures: [expect.stringMatching(/^test-1:/)],
      url: expect.stringMatching(/^nar\/[0-9a-z]{52}\.nar\.xz$/),
      compression: 'xz',
      downloadHash: expect.stringMatching(/^sha256-/),
      downloadSize: expect.any(Number),
    });
    const text = await runCli(['path-info', '--store', url, sample.hello]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${sample.hello} +[0-9.]+ (B|KiB)\\n$`));
  });

  it('narinfo show, fingerprint and verify read the files the cache holds', async () => {
    // greeting-lib is content-addressed: its CA line alone makes it trusted.
    const file = join(cache, `${hashPartOf(sample.lib)}.narinfo`);
    const text = await readFile(file, 'utf8');
    const show = await runCli(['narinfo', 'show', file]);
    expect(show.stdout).toBe(text);
    const json = JSON.parse((await runCli(['narinfo', 'show', '--json', file])).stdout);
    expect(json).toHaveLength(1);
    expect(json[0].path).toBe(sample.lib);
    const fp = await runCli(['narinfo', 'fingerprint', file]);
    expect(fp.stdout).toMatch(new RegExp(`^1;${sample.lib};sha256:[0-9a-z]{52};\\d+;${sample.data}\\n$`));
    const ok = await runCli(['narinfo', 'verify', '-k', publicKey, file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(`${file}: trusted (signed by test-1)\n`);
    const other = await runCli(['key', 'generate', '--name', 'other-1']);
    const otherPub = (await runCli(['key', 'public'], { input: other.stdout })).stdout.trim();
    // Without its CA line, only a trusted signature can make a narinfo trusted.
    const stripped = join(work, 'stripped.narinfo');
    await writeFile(stripped, text.replace(/^CA: .*\n/m, ''));
    const bad = await runCli(['narinfo', 'verify', '-k', otherPub, '--json', stripped, file]);
    expect(bad.code).toBe(1);
    const rows = JSON.parse(bad.stdout);
    expect(rows[0]).toEqual({
      file: stripped,
      path: sample.lib,
      trusted: false,
      signedBy: [],
      invalidSignatures: [],
      unknownSignatures: ['test-1'],
      contentAddressed: false,
    });
    expect(rows[1].trusted).toBe(true);
    expect(rows[1].contentAddressed).toBe(true);
    expect((await runCli(['narinfo', 'verify', file])).code).toBe(2);
    const garbage = join(work, 'garbage.narinfo');
    await writeFile(garbage, 'StorePath: nonsense\n');
    const parse = await runCli(['narinfo', 'show', garbage]);
    expect(parse.code).toBe(1);
    expect(parse.stderr.split('\n')).toHaveLength(2);
  });

  it('sign adds a second signature; copy moves the closure to another cache', async () => {
    const second = join(work, 'second.secret');
    expect((await runCli(['key', 'generate', '--name', 'second-1', '--out', second])).code).toBe(0);
    const sign = await runCli(['sign', '--store', url, '--key-file', second, '--all', '--json']);
    expect(sign.code).toBe(0);
    const lines = sign.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.at(-1)).toEqual({ summary: { signed: 3, unchanged: 0, missing: 0, failed: 0 }, ok: true });
    expect(lines.slice(0, -1).map((l) => [l.path, l.status])).toEqual(
      expect.arrayContaining([sample.data, sample.lib, sample.hello].map((p) => [p, 'signed'])),
    );
    const twice = await runCli([
      'sign',
      '--store',
      url,
      '--key-file',
      second,
      sample.hello,
      `/nix/store/${'1'.repeat(32)}-x`,
    ]);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toMatch(/1 already signed, 1 missing, 0 failed\n$/);
    expect(await readFile(join(cache, `${hashPartOf(sample.hello)}.narinfo`), 'utf8')).toMatch(
      /Sig: second-1:/,
    );

    const target = `file://${join(work, 'copy')}?compression=zstd`;
    const copy = await runCli([
      'copy',
      '--from',
      url,
      '--to',
      target,
      '-k',
      publicKey,
      '--json',
      sample.hello,
    ]);
    expect(copy.code).toBe(0);
    expect(JSON.parse(copy.stdout)).toEqual({
      copied: [sample.data, sample.lib, sample.hello],
      skipped: [],
      failed: [],
    });
    const verify = await runCli(['verify', '--store', target, '-k', publicKey, '--all']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/3 ok\n$/);
  });

  it('verify exits 1 and reports untrusted paths and corrupt NARs', async () => {
    const plainCache = join(work, 'plain-cache');
    const plainUrl = `file://${plainCache}?compression=none`;
    const push = await runCli([
      'push',
      '--to',
      plainUrl,
      '--store-dir',
      join(work, 'store'),
      plain,
      sample.data,
    ]);
    expect(push.code).toBe(0);
    expect(push.stdout).toBe(
      `pushed 2 paths to file://${plainCache} unsigned, skipped 0 already there, 0 failed\n`,
    );
    const untrusted = await runCli(['verify', '--store', plainUrl, '-k', publicKey, '--all', '--json']);
    expect(untrusted.code).toBe(1);
    const reports = parseVerifyJson(untrusted.stdout).reports as {
      storePath: string;
      status: string;
      reason: string;
    }[];
    expect(reports.find((r) => r.storePath === plain)).toMatchObject({
      status: 'untrusted',
      reason: expect.stringMatching(/no signatures/),
    });
    expect(reports.find((r) => r.storePath === sample.data)?.status).toBe('ok');

    const info = parseNarInfo(await readFile(join(plainCache, `${hashPartOf(sample.data)}.narinfo`), 'utf8'));
    const narPath = join(plainCache, info.url);
    const nar = await readFile(narPath);
    const at = nar.indexOf('Hello from');
    nar[at] = nar[at]! ^ 0x20;
    await writeFile(narPath, nar);
    const corrupt = await runCli(['verify', '--store', plainUrl, '-k', publicKey, sample.data, '--json']);
    expect(corrupt.code).toBe(1);
    const report = parseVerifyJson(corrupt.stdout).reports[0];
    expect(report).toMatchObject({
      storePath: sample.data,
      status: 'corrupt',
      reason: expect.stringMatching(/hash/i),
    });
    const human = await runCli(['verify', '--store', plainUrl, '-k', publicKey, '--all']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(new RegExp(`^corrupt +${sample.data}: .+$`, 'm'));
    expect(human.stdout).toMatch(new RegExp(`^untrusted +${plain}: .+$`, 'm'));
    expect(human.stdout).toMatch(/checked 2 paths in .*: 0 ok, 1 untrusted, 1 corrupt\n$/);
    const shallow = await runCli([
      'verify',
      '--store',
      plainUrl,
      '-k',
      publicKey,
      sample.data,
      '--no-contents',
    ]);
    expect(shallow.code).toBe(0);
  });

  it('push --no-closure refuses a path whose references are missing (exit 1, JSON failure)', async () => {
    const r = await runCli([
      'push',
      '--to',
      `file://${join(work, 'partial')}`,
      '--store-dir',
      join(work, 'store'),
      '--no-closure',
      '--json',
      sample.hello,
    ]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.pushed).toEqual([]);
    expect(out.failed).toEqual([
      { path: sample.hello, code: 'NOT_FOUND', message: expect.stringMatching(/not in the cache/) },
    ]);
    // Nothing at all is written for a path that cannot be published (not even nix-cache-info).
    expect(await readdir(join(work, 'partial')).catch(() => [])).not.toContain(
      `${hashPartOf(sample.hello)}.narinfo`,
    );
  });

  it('push --metadata takes `nix path-info --json` output in the array and the object form', async () => {
    const deriver = `/nix/store/${'2'.repeat(32)}-plain-tool.drv`;
    const entry = {
      narHash: (await runCli(['hash', 'path', join(work, 'store', plain.slice(11))])).stdout.trim(),
      references: [],
      deriver,
    };
    const arrayFile = join(work, 'meta-array.json');
    const objectFile = join(work, 'meta-object.json');
    await writeFile(arrayFile, JSON.stringify([{ path: plain, ...entry }]));
    await writeFile(
      objectFile,
      JSON.stringify({ [plain]: entry, [`/nix/store/${'3'.repeat(32)}-gone`]: null }),
    );
    for (const [i, file] of [arrayFile, objectFile].entries()) {
      const dest = join(work, `meta-${i}`);
      const r = await runCli([
        'push',
        '--to',
        `file://${dest}`,
        '--store-dir',
        join(work, 'store'),
        '--metadata',
        file,
        plain,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const info = parseNarInfo(await readFile(join(dest, `${hashPartOf(plain)}.narinfo`), 'utf8'));
      expect(info.deriver).toBe(deriver.slice(11));
    }
    const broken = join(work, 'meta-broken.json');
    await writeFile(broken, '{not json');
    const bad = await runCli([
      'push',
      '--to',
      `file://${join(work, 'meta-x')}`,
      '--store-dir',
      join(work, 'store'),
      '--metadata',
      broken,
      plain,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^nixcache: --metadata '.*meta-broken.json': not JSON/);
  });
});
