/**
 * Issue 10 item 8: trees deeper than 64 levels, which Nix 2.8 dumps, restores and hashes (the old
 * limit of 64 refused them). Checked against real Nix: a 100-level tree dumps byte for byte as
 * `nix-store --dump` does, hashes as `nix-hash`, restores from Nix's NAR and back into Nix.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pushPaths, verifyCache } from '../../src/cache/index.js';
import { formatHash } from '../../src/hash/index.js';
import { collectBytes } from '../../src/internal/iter.js';
import { narListing, readNar } from '../../src/nar/index.js';
import { dumpPath, hashPath, restorePath } from '../../src/nar/node/index.js';
import { formatPublicKey, generateSecretKey, toPublicKey } from '../../src/signing/keys.js';
import { openStore } from '../../src/store/index.js';
import { describeWithNix } from '../helpers/env.js';

const run = (cmd: string, args: string[], input?: Uint8Array) =>
  execFileSync(cmd, args, { maxBuffer: 1 << 28, input, stdio: ['pipe', 'pipe', 'pipe'] });
const LEVELS = 100;

describeWithNix('trees deeper than 64 levels, with nix', () => {
  let tmp: string;
  let tree: string;

  beforeAll(() => {
    tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-deep-'));
    tree = join(tmp, 'tree');
    let p = tree;
    for (let i = 0; i < LEVELS; i++) {
      p = join(p, i % 2 ? 'dir' : 'd');
      fs.mkdirSync(p, { recursive: true });
      if (i % 10 === 0) fs.writeFileSync(join(p, `f${i}`), `level ${i}\n`);
    }
    fs.writeFileSync(join(p, 'bottom.sh'), '#!/bin/sh\n', { mode: 0o755 });
    fs.symlinkSync('../bottom.sh', join(p, 'link'));
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(`${LEVELS} levels: dumpPath equals nix-store --dump, hashPath equals nix-hash`, async () => {
    const theirs = run('nix-store', ['--dump', tree]);
    const ours = await collectBytes(dumpPath(tree));
    expect(Buffer.compare(ours, theirs)).toBe(0);
    const { hash: narHash, narSize } = await hashPath(tree);
    expect(narSize).toBe(theirs.length);
    expect(formatHash(narHash, 'base16')).toBe(
      `sha256:${run('nix-hash', ['--type', 'sha256', tree]).toString().trim()}`,
    );
  });

  it(`${LEVELS} levels: restorePath reads Nix's NAR, and nix-store --restore reads ours`, async () => {
    const theirs = run('nix-store', ['--dump', tree]);
    const mine = join(tmp, 'restored-by-nixcache');
    await restorePath([theirs], mine);
    expect(Buffer.compare(run('nix-store', ['--dump', mine]), theirs)).toBe(0);
    const nixs = join(tmp, 'restored-by-nix');
    run('nix-store', ['--restore', nixs], await collectBytes(dumpPath(tree)));
    expect(Buffer.compare(await collectBytes(dumpPath(nixs)), theirs)).toBe(0);
    // Reading and listing it work too.
    let deepest = 0;
    for await (const e of readNar(theirs)) deepest = Math.max(deepest, e.depth);
    expect(deepest).toBe(LEVELS + 1);
    expect((await narListing(theirs)).root.type).toBe('directory');
  });

  it(`${LEVELS} levels: push and verify a store path of it (it was refused, and reported corrupt)`, async () => {
    const storePath = run('nix-store', ['--add', tree]).toString().trim();
    const key = generateSecretKey('deep-test-1');
    const store = await openStore(`file://${join(tmp, 'cache')}`, { onWarning: () => {} });
    const pushed = await pushPaths(store, [storePath], { storeDir: '/nix/store', secretKeys: [key] });
    expect(pushed.failed).toEqual([]);
    const { summary } = await verifyCache(store, { trustedKeys: [formatPublicKey(toPublicKey(key))] });
    expect(summary).toMatchObject({ total: 1, ok: 1 });
  });
});
