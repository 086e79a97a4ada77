/**
 * `nixcache push` on a machine with Nix: the paths users point at (`./result`, a
 * `/run/current-system`-style chain of links through profile generations, `--stdin` fed by
 * `nix-store -qR`) push the right closure with the database's metadata; a path outside the store
 * is a usage error naming it; without a database push says once that it scans.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseNarInfo } from '../../src/index.js';
import { runCli } from '../cli/helpers.js';
import { describeWithNix, repoRoot } from '../helpers/env.js';
import { nix } from '../helpers/nix.js';

function cachedPaths(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.narinfo'))
    .map((f) => parseNarInfo(readFileSync(join(dir, f), 'utf8'), { source: f }).storePath)
    .sort();
}

describeWithNix('push resolves the paths users point at', () => {
  const work = mkdtempSync(join(tmpdir(), 'nixcache-push-cli-'));
  let app: string;
  let closure: string[];

  beforeAll(() => {
    app = nix([
      'nix-build',
      join(repoRoot, 'fixtures', 'closure.nix'),
      '-A',
      'app',
      '--out-link',
      join(work, 'result'),
    ]);
    closure = nix(['nix-store', '-qR', app]).split('\n').sort();
    // /run/current-system -> /nix/var/nix/profiles/system -> system-3-link -> /nix/store/…
    mkdirSync(join(work, 'profiles'));
    mkdirSync(join(work, 'run'));
    symlinkSync(app, join(work, 'profiles', 'system-3-link'));
    symlinkSync('system-3-link', join(work, 'profiles', 'system'));
    symlinkSync(join(work, 'profiles', 'system'), join(work, 'run', 'current-system'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('pushes the closure of ./result and of a chain of profile links, from the database', async () => {
    for (const [arg, cwd] of [
      ['./result', work],
      [join(work, 'run', 'current-system'), repoRoot],
      [`${app}/bin/app`, repoRoot],
    ] as const) {
      const cache = mkdtempSync(join(work, 'cache-'));
      const r = await runCli(['push', '--to', `file://${cache}`, arg], { cwd });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('scanning');
      expect(cachedPaths(cache), arg).toEqual(closure);
    }
  });

  it('reads the paths from --stdin, as nix-store -qR prints them', async () => {
    const cache = mkdtempSync(join(work, 'cache-'));
    const r = await runCli(['push', '--to', `file://${cache}`, '--no-closure', '--stdin', '--json'], {
      input: `${[...closure].reverse().join('\n')}\n`,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).pushed.sort()).toEqual(closure);
  });

  it('names an argument that is not in the store', async () => {
    const cache = mkdtempSync(join(work, 'cache-'));
    const r = await runCli(['push', '--to', `file://${cache}`, join(work, 'profiles')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`'${join(work, 'profiles')}' is not a store path`);
    expect(readdirSync(cache).filter((n) => n.endsWith('.narinfo'))).toEqual([]);
  });

  it('says once that it scans when there is no database', async () => {
    const cache = mkdtempSync(join(work, 'cache-'));
    const r = await runCli(['push', '--to', `file://${cache}`, app], {
      env: { NIXCACHE_NIX_DB: join(work, 'no-such-db.sqlite') },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/scanning/g)).toHaveLength(1);
    expect(cachedPaths(cache)).toEqual(closure);
  });
});
