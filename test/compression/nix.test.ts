/**
 * Interop with real Nix (2.8 here): NARs that `nix copy` writes with each compression decode to the
 * narinfo's NarHash, and NARs that nixcache compresses are read back by `nix copy --from`, including
 * multi-stream bzip2 and concatenated xz streams. The narinfo is read with a tiny regex on purpose.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compress, decompress, narFileExtension } from '../../src/compression/index.js';
import { parseHash } from '../../src/hash/hash.js';
import { encodeNix32 } from '../../src/nix32.js';
import { describeWithNix } from '../helpers/env.js';
import { chunked, collectBytes, sameBytes, sampleBytes } from './helpers.js';

const NIX = ['--extra-experimental-features', 'nix-command'];
const METHODS = ['xz', 'bzip2', 'zstd', 'br', 'gzip', 'none'] as const;

function field(narinfo: string, name: string): string {
  const m = new RegExp(`^${name}: (.*)$`, 'm').exec(narinfo);
  if (!m?.[1]) throw new Error(`narinfo has no ${name}`);
  return m[1];
}

function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

describeWithNix('real Nix reads and writes what nixcache does', () => {
  let dir: string;
  let storePath: string;
  let big: Uint8Array;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nixcache-compression-nix-'));
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'hello.txt'), 'hello from nixcache\n');
    big = sampleBytes(1_200_000, 99);
    writeFileSync(join(tree, 'sub', 'data.bin'), big);
    writeFileSync(join(tree, 'run.sh'), '#!/bin/sh\necho hi\n');
    chmodSync(join(tree, 'run.sh'), 0o755);
    symlinkSync('hello.txt', join(tree, 'link'));
    storePath = execFileSync('nix-store', ['--add', tree]).toString().trim();
    for (const method of METHODS) {
      execFileSync(
        'nix',
        [...NIX, 'copy', '--to', `file://${dir}/nix-${method}?compression=${method}`, storePath],
        {
          stdio: 'ignore',
        },
      );
    }
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function narinfoOf(cache: string): string {
    const name = readdirSync(cache).find((f) => f.endsWith('.narinfo'));
    if (!name) throw new Error(`no narinfo in ${cache}`);
    return readFileSync(join(cache, name), 'utf8');
  }

  for (const method of METHODS) {
    it(`decodes the NAR that \`nix copy --to …?compression=${method}\` wrote to its NarHash`, async () => {
      const cache = join(dir, `nix-${method}`);
      const info = narinfoOf(cache);
      expect(field(info, 'Compression')).toBe(method);
      const url = field(info, 'URL');
      expect(url.endsWith(`.nar${narFileExtension(method)}`)).toBe(true);
      const file = readFileSync(join(cache, url));
      const nar = await collectBytes(decompress(method, chunked(file, [1000, 50_000])));
      expect(nar.length).toBe(Number(field(info, 'NarSize')));
      expect(sameBytes(sha256(nar), parseHash(field(info, 'NarHash')).digest)).toBe(true);
    });
  }

  const variants = [...METHODS, 'xz-concatenated'] as const;
  for (const variant of variants) {
    it(`\`nix copy --from\` reads a cache whose NAR nixcache compressed with ${variant}`, async () => {
      const plain = join(dir, 'nix-none');
      const info = narinfoOf(plain);
      const nar = readFileSync(join(plain, field(info, 'URL')));
      const method = variant === 'xz-concatenated' ? 'xz' : variant;
      let packed: Uint8Array;
      if (variant === 'xz-concatenated') {
        // Two independent .xz streams back to back, as a block-wise encoder would write.
        const half = nar.length >> 1;
        const a = await collectBytes(compress('xz', nar.subarray(0, half)));
        const b = await collectBytes(compress('xz', nar.subarray(half)));
        packed = new Uint8Array(a.length + b.length);
        packed.set(a);
        packed.set(b, a.length);
      } else {
        // bzip2 level 1: 100 kB slices, so the 1.2 MB NAR becomes a dozen concatenated streams.
        packed = await collectBytes(compress(method, nar, { level: method === 'bzip2' ? 1 : undefined }));
      }
      const fileHash = sha256(packed);
      const url = `nar/${encodeNix32(fileHash)}.nar${narFileExtension(method)}`;
      const cache = join(dir, `ours-${variant}`);
      mkdirSync(join(cache, 'nar'), { recursive: true });
      writeFileSync(join(cache, 'nix-cache-info'), readFileSync(join(plain, 'nix-cache-info')));
      writeFileSync(join(cache, url), packed);
      const ours = info
        .replace(/^URL: .*$/m, `URL: ${url}`)
        .replace(/^Compression: .*$/m, `Compression: ${method}`)
        .replace(/^FileHash: .*$/m, `FileHash: sha256:${encodeNix32(fileHash)}`)
        .replace(/^FileSize: .*$/m, `FileSize: ${packed.length}`);
      const hashPart = storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      writeFileSync(join(cache, `${hashPart}.narinfo`), ours);
      const root = join(dir, `root-${variant}`);
      execFileSync(
        'nix',
        [...NIX, 'copy', '--no-check-sigs', '--from', `file://${cache}`, '--to', root, storePath],
        {
          stdio: 'pipe',
        },
      );
      const copied = join(root, storePath, 'sub', 'data.bin');
      expect(sameBytes(readFileSync(copied), big)).toBe(true);
    });
  }
});
