/**
 * Real Nix as the oracle for the cache operations' rules: it refuses what nixcache refuses (a
 * NAR swapped under a CA claim), and it substitutes from a cache that only `copy` wrote.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyPaths } from '../../src/cache/index.js';
import { formatPublicKey, generateSecretKey } from '../../src/index.js';
import { openStore } from '../../src/store/index.js';
import { makeSourceStore, pushUnsigned, type SourceStore, swapNar } from '../cache/helpers.js';
import { describeWithNix } from '../helpers/env.js';
import { startHttpCache, type TestHttpServer } from '../helpers/http-server.js';
import { nixSubstitute } from '../helpers/nix.js';

describeWithNix('real Nix and the cache operations', () => {
  const work = mkdtempSync(join(tmpdir(), 'nixcache-interop-ops-'));
  const servers: TestHttpServer[] = [];
  const key = generateSecretKey('interop-ops-1');
  const pub = formatPublicKey(key.publicKey);
  let source: SourceStore;
  let fresh = 0;

  beforeAll(async () => {
    source = await makeSourceStore(join(work, 'store'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(work, { recursive: true, force: true });
  });

  const substitute = (url: string, path: string) =>
    nixSubstitute(url, join(work, `fresh-${fresh++}`), path, pub);

  it.each([
    ['fixed:r:sha256', 'data'],
    ['text', 'note'],
  ] as const)('a NAR swapped under a %s claim: real Nix refuses it, and so does copy', async (_, which) => {
    const path = source[which];
    const dir = join(work, `tampered-${which}`);
    const url = await pushUnsigned(source, dir, [path]);
    // Untampered, Nix takes it on the CA claim alone.
    expect((await substitute(url, path)).status).toBe(0);
    await swapNar(dir, path, 'forged contents\n');
    const refused = await substitute(url, path);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/ca hash mismatch|hash mismatch/i);
    const copied = await copyPaths(
      await openStore(url),
      await openStore(`file://${join(work, `copy-${which}`)}`),
      [path],
      { trustedKeys: [pub], secretKeys: [key] },
    );
    expect(copied.pushed).toEqual([]);
    expect(copied.failed.map((f) => f.path)).toEqual([path]);
  });

  it('substitutes from a cache that only copy wrote, served read-only over HTTP', async () => {
    // Read-only: Nix cannot write a missing nix-cache-info itself, as with a real HTTP cache.
    const from = await pushUnsigned(source, join(work, 'copy-source'), [source.lib]);
    const dir = join(work, 'copied-only');
    const to = await openStore(`file://${dir}?compression=xz`);
    const copied = await copyPaths(await openStore(from), to, [source.lib], { secretKeys: [key] });
    expect(copied.failed).toEqual([]);
    expect(copied.pushed).toEqual([source.data, source.lib]);
    const server = await startHttpCache(dir, { readOnly: true });
    servers.push(server);
    const r = await substitute(server.url, source.lib);
    expect(r.stderr).not.toMatch(/does not appear to be a binary cache|error/);
    expect(r.status).toBe(0);
  });
});
