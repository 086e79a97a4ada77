/**
 * `push --skip-upstream`: with a local HTTP cache standing in for cache.nixos.org, a path the
 * upstream serves signed by a trusted upstream key is not uploaded (counted in the output and
 * --json), a path it serves signed only by another key is pushed, and real Nix with both
 * substituters substitutes the whole closure. An unreachable upstream is an error unless
 * --upstream-optional, which pushes everything and says so.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../cli/helpers.js';
import { describeWithNix } from '../helpers/env.js';
import { startHttpCache, type TestHttpServer } from '../helpers/http-server.js';
import {
  buildFixtureClosure,
  type FixtureClosure,
  type NixSigningKey,
  nixSigningKey,
  nixStatus,
} from '../helpers/nix.js';

describeWithNix('push --skip-upstream', () => {
  const work = mkdtempSync(join(tmpdir(), 'nixcache-upstream-'));
  let closure: FixtureClosure;
  let upstreamKey: NixSigningKey;
  let otherKey: NixSigningKey;
  let ourKey: NixSigningKey;
  let upstream: TestHttpServer;

  beforeAll(async () => {
    closure = buildFixtureClosure();
    upstreamKey = nixSigningKey(work, 'upstream');
    otherKey = nixSigningKey(work, 'other');
    ourKey = nixSigningKey(work, 'ours');
    const dir = join(work, 'upstream');
    // The upstream serves dep signed only by a key we do not trust, and lib signed by its own key.
    for (const [path, key, extra] of [
      [closure.dep, otherKey, ['--no-closure']],
      [closure.lib, upstreamKey, []],
    ] as const) {
      const r = await runCli(['push', '--to', `file://${dir}`, '--key-file', key.keyFile, ...extra, path]);
      expect(r.code, r.stderr).toBe(0);
    }
    upstream = await startHttpCache(dir);
  });
  afterAll(async () => {
    await upstream?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('skips what the upstream serves signed, pushes the rest, and Nix substitutes from both', async () => {
    const dir = join(work, 'ours');
    const r = await runCli([
      'push',
      '--to',
      `file://${dir}`,
      '--key-file',
      ourKey.keyFile,
      '--skip-upstream',
      upstream.url,
      '--upstream-key',
      upstreamKey.publicKey,
      '--json',
      closure.app,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.upstream).toEqual([closure.lib]);
    expect([...out.pushed].sort()).toEqual([closure.app, closure.dep].sort());
    expect(readdirSync(dir).filter((n) => n.endsWith('.narinfo'))).toHaveLength(2);

    const human = await runCli([
      'push',
      '--to',
      `file://${join(work, 'ours-human')}`,
      '--skip-upstream',
      upstream.url,
      '--upstream-key',
      upstreamKey.publicKey,
      closure.app,
    ]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('1 served upstream');

    const ours = await startHttpCache(dir);
    try {
      const target = join(work, 'fresh');
      const nix = await nixStatus([
        'nix-store',
        '--store',
        `local?root=${target}`,
        '--realise',
        closure.app,
        '--option',
        'substituters',
        `${ours.url} ${upstream.url}`,
        '--option',
        'trusted-public-keys',
        `${ourKey.publicKey} ${upstreamKey.publicKey}`,
      ]);
      expect(nix.status, nix.stderr).toBe(0);
      const got = readdirSync(join(target, 'nix', 'store'));
      for (const p of [closure.app, closure.lib, closure.dep])
        expect(got).toContain(p.slice('/nix/store/'.length));
    } finally {
      await ours.close();
    }
  });

  it('fails on an unreachable upstream, unless --upstream-optional pushes everything and says so', async () => {
    const args = ['--skip-upstream', 'http://127.0.0.1:9/nix-cache', '--upstream-key', upstreamKey.publicKey];
    const failing = await runCli([
      'push',
      '--to',
      `file://${join(work, 'unreachable')}`,
      ...args,
      closure.app,
    ]);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/upstream cache unreachable.*127\.0\.0\.1:9/);
    expect(failing.stderr).toContain('--upstream-optional');
    const optional = await runCli([
      'push',
      '--to',
      `file://${join(work, 'optional')}`,
      ...args,
      '--upstream-optional',
      '--json',
      closure.app,
    ]);
    expect(optional.code, optional.stderr).toBe(0);
    const out = JSON.parse(optional.stdout);
    expect(out.upstream).toEqual([]);
    expect(out.pushed).toHaveLength(3);
    expect(out.upstreamUnavailable).toMatch(/127\.0\.0\.1:9/);
    expect(optional.stderr).toContain('nothing is skipped');
  });
});
