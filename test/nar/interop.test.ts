/**
 * NAR interop with the real Nix (2.8 here): dumpPath vs `nix-store --dump`, hashPath vs
 * `nix hash path`, restorePath vs `nix-store --restore`, `.ls` listings vs
 * `nix copy --to file://…?write-nar-listing=1`, scanReferences vs `nix-store --query --references`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatHash, parseHash } from '../../src/hash/index.js';
import { collectBytes } from '../../src/internal/iter.js';
import {
  formatNarListing,
  hashNar,
  narListing,
  readNar,
  scanReferences,
  writeNar,
} from '../../src/nar/index.js';
import { dumpPath, hashPath, restorePath } from '../../src/nar/node/index.js';
import { describeWithNix, repoRoot } from '../helpers/env.js';

const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
const text = (cmd: string, args: string[]) => run(cmd, args).toString().trim();
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describeWithNix('interop with nix', () => {
  let tmp: string;
  let trees: string;
  const names = ['basic', 'names', 'nonutf8', 'deep', 'large', 'file.txt', 'exe.sh', 'link'];

  beforeAll(() => {
    tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-nar-interop-'));
    trees = join(tmp, 'trees');
    run('sh', [join(repoRoot, 'fixtures', 'nar', 'make-trees.sh'), trees]);
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it.each(names)('%s: dumpPath is byte-identical to nix-store --dump', async (t) => {
    const p = join(trees, t);
    const theirs = run('nix-store', ['--dump', p]);
    const ours = await collectBytes(dumpPath(p));
    expect(ours.length).toBe(theirs.length);
    expect(same(ours, theirs)).toBe(true);
    // and our reader/writer agree with it
    expect(same(await collectBytes(writeNar(readNar(theirs))), theirs)).toBe(true);
  });

  it.each(names)('%s: hashPath equals nix hash path (base32, base16, SRI)', async (t) => {
    const p = join(trees, t);
    const { hash } = await hashPath(p);
    expect(formatHash(hash, 'nix32')).toBe(`sha256:${text('nix', ['hash', 'path', '--base32', p])}`);
    expect(formatHash(hash, 'base16')).toBe(`sha256:${text('nix', ['hash', 'path', '--base16', p])}`);
    expect(formatHash(hash, 'sri')).toBe(text('nix', ['hash', 'path', '--sri', p]));
  });

  it('hashPath with sha512 and sha1 equals nix hash path --type', async () => {
    const p = join(trees, 'basic');
    for (const algorithm of ['sha512', 'sha1', 'md5'] as const) {
      const { hash } = await hashPath(p, { algorithm });
      expect(formatHash(hash, 'sri')).toBe(text('nix', ['hash', 'path', '--type', algorithm, '--sri', p]));
    }
  });

  it('restorePath of a nix-store --dump gives a tree nix dumps identically; nix restores our NARs', async () => {
    for (const t of ['basic', 'names', 'nonutf8', 'deep', 'link']) {
      const nar = run('nix-store', ['--dump', join(trees, t)]);
      const ours = join(tmp, `restored-${t}`);
      await restorePath(nar, ours);
      expect(same(run('nix-store', ['--dump', ours]), nar)).toBe(true);
      const theirs = join(tmp, `nix-restored-${t}`);
      execFileSync('nix-store', ['--restore', theirs], {
        input: await collectBytes(dumpPath(join(trees, t))),
      });
      expect(same(await collectBytes(dumpPath(theirs)), nar)).toBe(true);
    }
  });

  it('.ls listings and NAR hashes match nix copy --to file://…?write-nar-listing=1', async () => {
    const cache = join(tmp, 'cache');
    for (const t of ['basic', 'names', 'deep', 'file.txt', 'link']) {
      const storePath = text('nix-store', ['--add', join(trees, t)]);
      run('nix', ['copy', '--to', `file://${cache}?write-nar-listing=1&compression=none`, storePath]);
      const hashPart = storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const narinfo = fs.readFileSync(join(cache, `${hashPart}.narinfo`), 'utf8');
      const field = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(narinfo)![1]!;
      const nar = new Uint8Array(fs.readFileSync(join(cache, field('URL'))));
      const ls = fs.readFileSync(join(cache, `${hashPart}.ls`), 'utf8');
      expect(formatNarListing(await narListing(nar))).toBe(ls);
      const { narHash, narSize } = await hashNar(nar);
      expect(formatHash(narHash)).toBe(formatHash(parseHash(field('NarHash'))));
      expect(narSize).toBe(Number(field('NarSize')));
      expect(same(await collectBytes(dumpPath(storePath)), nar)).toBe(true);
    }
  });

  it('scanReferences over nix-store --dump finds what nix-store --query --references records', async () => {
    const expr = `
      let
        dep = builtins.toFile "nixcache-dep" "I am a dependency";
        unused = builtins.toFile "nixcache-unused" "nobody refers to me";
        withRef = builtins.toFile "nixcache-with-ref" "see \${dep} for details";
      in derivation {
        name = "nixcache-self-ref";
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir $out && echo $out > $out/self && echo \${dep} > $out/dep && /bin/ln -s \${withRef} $out/link && echo \${unused} | /bin/tr a-z A-Z > $out/shouted" ];
      }`;
    const exprFile = join(tmp, 'refs.nix');
    fs.writeFileSync(exprFile, expr);
    const out = text('nix-build', ['--no-out-link', exprFile]);
    const hashOf = (p: string) => p.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const refsOf = (p: string) =>
      text('nix-store', ['--query', '--references', p]).split('\n').filter(Boolean);
    const outRefs = refsOf(out);
    const withRef = outRefs.find((r) => r.endsWith('-nixcache-with-ref'))!;
    const dep = outRefs.find((r) => r.endsWith('-nixcache-dep'))!;
    const unused = text('nix-instantiate', [
      '--eval',
      '--expr',
      'builtins.toFile "nixcache-unused" "nobody refers to me"',
    ]).replace(/"/g, '');
    expect(outRefs).toContain(out); // a self-reference
    const candidates = [out, dep, withRef, unused].map(hashOf);

    const found = await scanReferences(run('nix-store', ['--dump', out]), candidates);
    expect([...found].sort()).toEqual(outRefs.map(hashOf).sort());
    expect(found.has(hashOf(unused))).toBe(false); // written in upper case, so not a reference

    const found2 = await scanReferences(dumpPath(withRef), candidates);
    expect([...found2].sort()).toEqual(refsOf(withRef).map(hashOf).sort());
  });
});
