/**
 * The README's quick start, run as the README states it: `npm run quickstart` finishes well
 * under a minute and prints the nix.conf lines; `npm run quickstart -- --serve` keeps serving,
 * real `nix copy --from` substitutes the sample closure from it with the printed key, and Ctrl-C
 * (SIGINT to its process group, as a terminal sends it) stops it cleanly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeWithNix, repoRoot } from '../helpers/env.js';
import { nixStatus } from '../helpers/nix.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface Printed {
  readonly substituter: string;
  readonly publicKey: string;
  readonly hello: string;
}

function parsePrinted(out: string): Printed {
  const substituter = /^extra-substituters = (http:\/\/127\.0\.0\.1:\d+\/nix-cache)$/m.exec(out)?.[1];
  const publicKey = /^extra-trusted-public-keys = (quickstart-1:[A-Za-z0-9+/]{43}=)$/m.exec(out)?.[1];
  const hello = /^ {4}(\/nix\/store\/[0-9a-z]{32}-hello-nixcache)$/m.exec(out)?.[1];
  if (!substituter || !publicKey || !hello)
    throw new Error(`quick start output lacks the nix.conf lines:\n${out}`);
  return { substituter, publicKey, hello };
}

describe('the README', () => {
  it('gives the quick start first and the tests second', async () => {
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    expect(blocks[0]).toBe('npm ci && npm run quickstart');
    expect(blocks[1]).toBe('npm ci && npm test');
  });
});

describe('npm run quickstart', () => {
  it('runs the whole workflow without nix or network in well under a minute', async () => {
    const started = Date.now();
    const child = spawn(npm, ['run', 'quickstart'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, `${out}\n${err}`).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    parsePrinted(out);
    expect(out).toContain('pushed 3 paths to s3://nix-cache signed by quickstart-1');
    expect(out).toMatch(/checked 3 paths in s3:\/\/nix-cache: 3 ok/);
    expect(out).toMatch(/StorePath: \/nix\/store\/[0-9a-z]{32}-hello-nixcache\n/);
    expect(out).toMatch(/note: s3rver has no bucket policies/);
    // Its temporary directory is gone.
    const dir = /\(read from (.*)\/store, named as in \/nix\/store\)/.exec(out)?.[1];
    expect(dir).toBeDefined();
    await expect(readdir(dir!)).rejects.toThrow(/ENOENT/);
  }, 60_000);
});

describeWithNix('npm run quickstart -- --serve with real nix', () => {
  let child: ChildProcess | undefined;
  let scratch: string | undefined;

  afterAll(async () => {
    if (child?.pid && child.exitCode === null && child.signalCode === null)
      process.kill(-child.pid, 'SIGKILL');
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('serves the cache until Ctrl-C, and nix copy --from substitutes with the printed key', async () => {
    // Its own process group, so Ctrl-C can be delivered to npm, node and s3rver as a terminal does.
    const proc = spawn(npm, ['run', 'quickstart', '--', '--serve'], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.on('close', (code, signal) => resolve({ code, signal })),
    );
    await new Promise<void>((resolve, reject) => {
      proc.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (/^serving http:\/\/127\.0\.0\.1:\d+\/nix-cache until Ctrl-C$/m.test(out)) resolve();
      });
      proc.on('close', (code) =>
        reject(new Error(`quick start exited (${code}) before serving:\n${out}\n${err}`)),
      );
    });
    const printed = parsePrinted(out);

    scratch = await mkdtemp(join(tmpdir(), 'nixcache-quickstart-nix-'));
    const target = join(scratch, 'store');
    const copy = await nixStatus([
      'nix',
      'copy',
      '--from',
      printed.substituter,
      '--to',
      target,
      printed.hello,
      '--option',
      'trusted-public-keys',
      printed.publicKey,
    ]);
    expect(copy.status, copy.stderr).toBe(0);
    const copied = await readdir(join(target, 'nix', 'store'));
    for (const name of ['hello-nixcache', 'greeting-lib', 'greeting-data']) {
      expect(copied.some((n) => n.endsWith(`-${name}`))).toBe(true);
    }
    const hello = await readFile(join(target, printed.hello.slice(1), 'bin', 'hello'), 'utf8');
    expect(hello).toMatch(/greeting/);
    // hello is input-addressed: with any other trusted key, Nix refuses it.
    const wrongKey = `${printed.publicKey.split(':')[0]}:${Buffer.alloc(32, 7).toString('base64')}`;
    const refused = await nixStatus([
      'nix',
      'copy',
      '--from',
      printed.substituter,
      '--to',
      join(scratch, 'refused'),
      printed.hello,
      '--option',
      'trusted-public-keys',
      wrongKey,
    ]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/signature/);

    process.kill(-proc.pid!, 'SIGINT');
    // npm itself dies of the SIGINT (as in a terminal); the quick start under it cleans up.
    const end = await exited;
    expect(end.code === 0 || end.signal === 'SIGINT', JSON.stringify(end)).toBe(true);
    const dir = /\(read from (.*)\/store, named as in \/nix\/store\)/.exec(out)![1]!;
    for (let i = 0; i < 50 && existsSync(dir); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(dir)).toBe(false);
    await expect(fetch(`${printed.substituter}/nix-cache-info`)).rejects.toThrow();
  }, 90_000);
});
