import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NixcacheError } from '../../src/errors.js';
import { formatHash } from '../../src/hash/index.js';
import { toHex, utf8 } from '../../src/internal/bytes.js';
import { collectBytes } from '../../src/internal/iter.js';
import { type NarWriteEntry, readNar, writeNar } from '../../src/nar/index.js';
import { dumpPath, hashPath, restorePath } from '../../src/nar/node/index.js';
import { ASYNC_FROM, FIRST_FRESH_CHUNK, FRESH_CHUNK, REUSED_CHUNK } from '../../src/nar/node/walk.js';
import { corpusPath, describeWithCorpus } from '../helpers/env.js';
import {
  arbTree,
  chunks,
  dirNar,
  entryTokens,
  fileTokens,
  materialise,
  rawNar,
  type Token,
  treeEntries,
} from './helpers.js';

let tmp: string;
let counter = 0;
const fresh = (label = 'x') => join(tmp, `${label}-${counter++}`);

beforeAll(() => {
  tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-nar-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('hashPath: nix-formats.md §10.4 vectors', () => {
  it('a file containing "hi\\n"', async () => {
    const p = fresh();
    fs.writeFileSync(p, 'hi\n');
    expect(formatHash((await hashPath(p)).hash)).toBe(
      'sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h',
    );
  });

  it('symlinks to /non-existent-48cujwe8ndf4as0bne and /bin', async () => {
    const a = fresh();
    fs.symlinkSync('/non-existent-48cujwe8ndf4as0bne', a);
    expect(formatHash((await hashPath(a)).hash)).toBe(
      'sha256:1bl5ry3x1fcbwgr5c2x50bn572iixh4j1p6ax5isxly2ddgn8pbp',
    );
    const b = fresh();
    fs.symlinkSync('/bin', b);
    expect(formatHash((await hashPath(b)).hash)).toBe(
      'sha256:0z2mdmkd43l0ijdxfbj1y8vzli15yh9b09n3a3rrygmjshbyypsw',
    );
  });

  it('a directory with hello (file, executable file, symlink): md5', async () => {
    const d = fresh();
    fs.mkdirSync(d);
    fs.writeFileSync(join(d, 'hello'), 'Hello World\n', { mode: 0o644 });
    expect(formatHash((await hashPath(d, { algorithm: 'md5' })).hash, 'base16')).toBe(
      'md5:ea9b55537dd4c7e104515b2ccfaf4100',
    );
    fs.chmodSync(join(d, 'hello'), 0o755);
    expect(formatHash((await hashPath(d, { algorithm: 'md5' })).hash, 'base16')).toBe(
      'md5:20f3ffe011d4cfa7d72bfabef7882836',
    );
    fs.rmSync(join(d, 'hello'));
    fs.symlinkSync('x', join(d, 'hello'));
    expect(formatHash((await hashPath(d, { algorithm: 'md5' })).hash, 'base16')).toBe(
      'md5:f78b733a68f5edbdf9413899339eaa4a',
    );
  });

  it('an empty file (112 bytes) and an empty directory (96 bytes)', async () => {
    const f = fresh();
    fs.writeFileSync(f, '');
    const rf = await hashPath(f);
    expect(rf.narSize).toBe(112);
    expect(toHex(rf.hash.digest)).toBe('77ac62e2629d8e45f624589c0c8bf99e24b3a722349bf1e79bc186008534e246');
    const d = fresh();
    fs.mkdirSync(d);
    const rd = await hashPath(d);
    expect(rd.narSize).toBe(96);
    expect(toHex(rd.hash.digest)).toBe('a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a');
  });
});

describe('dumpPath and hashPath', () => {
  it('random trees: dumpPath of the materialised tree equals writeNar, hashPath its sha256', async () => {
    await fc.assert(
      fc.asyncProperty(arbTree, async (tree) => {
        const p = fresh('tree');
        materialise(tree, p);
        const expected = await collectBytes(writeNar(treeEntries(tree)));
        expect(same(await collectBytes(dumpPath(p)), expected)).toBe(true);
        const copies: Uint8Array[] = [];
        for await (const c of dumpPath(p, { reuseChunks: true })) copies.push(c.slice());
        expect(same(Buffer.concat(copies), expected)).toBe(true);
        const { hash, narSize } = await hashPath(p);
        expect(narSize).toBe(expected.length);
        expect(toHex(hash.digest)).toBe(createHash('sha256').update(expected).digest('hex'));
      }),
      { numRuns: 60 },
    );
  });

  it('large files are read in pieces, handed out uncopied, and hash like the whole', async () => {
    const p = fresh('big');
    const data = new Uint8Array(3 * 1024 * 1024 + 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    fs.writeFileSync(p, data);
    const parts = [];
    for await (const c of dumpPath(p)) parts.push(c);
    expect(parts.length).toBeGreaterThan(3);
    expect(parts.every((c) => c.constructor === Uint8Array)).toBe(true);
    const nar = Buffer.concat(parts);
    expect(same(nar, await collectBytes(writeNar([{ path: '', type: 'regular', contents: data }])))).toBe(
      true,
    );
    expect(toHex((await hashPath(p)).hash.digest)).toBe(createHash('sha256').update(nar).digest('hex'));
    expect(toHex((await hashPath(p, { algorithm: 'sha512' })).hash.digest)).toBe(
      createHash('sha512').update(nar).digest('hex'),
    );
  });

  it('many files of odd sizes across chunk boundaries (framing split at unaligned offsets)', async () => {
    const d = fresh('odd');
    fs.mkdirSync(d);
    fs.mkdirSync(join(d, 'sub'));
    const entries: NarWriteEntry[] = [
      { path: '', type: 'directory' },
      { path: 'sub', type: 'directory' },
    ];
    let seed = 7;
    for (let i = 0; i < 120; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      // Sizes from 0 to ~70 KiB, most not multiples of 8; names of varying lengths.
      const size = i % 10 === 0 ? 0 : (seed % 70000) + (i % 7);
      const name = `f${i.toString().padStart(3, '0')}${'x'.repeat(i % 13)}`;
      const data = new Uint8Array(size);
      for (let j = 0; j < size; j++) data[j] = (j * 13 + i) & 0xff;
      fs.writeFileSync(join(d, 'sub', name), data, { mode: i % 3 === 0 ? 0o755 : 0o644 });
      entries.push({
        path: `sub/${name}`,
        type: 'regular',
        executable: i % 3 === 0,
        contents: data,
      });
    }
    const expected = await collectBytes(writeNar(entries));
    expect(expected.length).toBeGreaterThan(3 * 1024 * 1024);
    expect(same(await collectBytes(dumpPath(d)), expected)).toBe(true);
    const { hash, narSize } = await hashPath(d);
    expect(narSize).toBe(expected.length);
    expect(toHex(hash.digest)).toBe(createHash('sha256').update(expected).digest('hex'));
  });

  it('contents ending just before a chunk boundary (padding and the next name in a new chunk)', async () => {
    // A directory's NAR up to the first byte of its first entry 'a' (a regular file) is 232 bytes.
    // A dump's chunks grow from FIRST_FRESH_CHUNK fourfold: its first two boundaries too.
    const grown = FIRST_FRESH_CHUNK + 4 * FIRST_FRESH_CHUNK;
    for (const chunk of [REUSED_CHUNK, FRESH_CHUNK, FIRST_FRESH_CHUNK, grown]) {
      for (const k of [1, 3, 7, 13, 23, 29]) {
        const d = fresh('edge');
        fs.mkdirSync(d);
        const a = new Uint8Array(chunk - 232 - k).fill(0x61);
        fs.writeFileSync(join(d, 'a'), a);
        fs.writeFileSync(join(d, 'bcdefghijkl'), 'hello');
        const expected = await collectBytes(
          writeNar([
            { path: '', type: 'directory' },
            { path: 'a', type: 'regular', contents: a },
            { path: 'bcdefghijkl', type: 'regular', contents: utf8('hello') },
          ]),
        );
        expect(same(await collectBytes(dumpPath(d)), expected)).toBe(true);
        const { hash, narSize } = await hashPath(d);
        expect(narSize).toBe(expected.length);
        expect(toHex(hash.digest)).toBe(createHash('sha256').update(expected).digest('hex'));
      }
    }
  });

  it('large files (read ahead when hashing): stopping early or failing closes every file', async () => {
    const d = fresh('ahead');
    fs.mkdirSync(d);
    const big = new Uint8Array(ASYNC_FROM * 3 + 11).fill(0x5a);
    for (let i = 0; i < 6; i++) fs.writeFileSync(join(d, `big${i}`), big);
    fs.writeFileSync(join(d, 'small'), 'x');
    const openFds = () => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    for await (const _ of dumpPath(d)) break;
    expect(openFds()).toBe(before);
    // A fifo after the large files: the walk fails while their pieces are still being read.
    execFileSync('mkfifo', [join(d, 'zz-pipe')]);
    await expect(collectBytes(dumpPath(d))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expect(hashPath(d)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    expect(openFds()).toBe(before);
    fs.rmSync(join(d, 'zz-pipe'));
    const entries: NarWriteEntry[] = [{ path: '', type: 'directory' }];
    for (let i = 0; i < 6; i++) entries.push({ path: `big${i}`, type: 'regular', contents: big });
    entries.push({ path: 'small', type: 'regular', contents: utf8('x') });
    const expected = await collectBytes(writeNar(entries));
    expect(same(await collectBytes(dumpPath(d)), expected)).toBe(true);
    expect(toHex((await hashPath(d)).hash.digest)).toBe(createHash('sha256').update(expected).digest('hex'));
    // reuseChunks: each chunk is consumed before the next is asked for.
    const h = createHash('sha256');
    let size = 0;
    for await (const c of dumpPath(d, { reuseChunks: true })) {
      h.update(c);
      size += c.length;
    }
    expect(size).toBe(expected.length);
    expect(h.digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    // A slow consumer (reads ahead are held back, nothing is lost or reordered).
    const slow = createHash('sha256');
    for await (const c of dumpPath(d, { reuseChunks: true })) {
      slow.update(c);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(slow.digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    for await (const _ of dumpPath(d, { reuseChunks: true })) break;
    expect(openFds()).toBe(before);
    // hashPath aborted while pieces are being read in the thread pool.
    const ac = new AbortController();
    const hashing = hashPath(d, { signal: ac.signal }).catch((e: unknown) => e);
    setImmediate(() => ac.abort());
    expect(await hashing).toMatchObject({ code: 'ABORTED' });
    expect(openFds()).toBe(before);
    // A dump aborted after its first chunk, in the middle of big0.
    const stop = new AbortController();
    const aborted = (async () => {
      for await (const _ of dumpPath(d, { signal: stop.signal })) stop.abort();
    })();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    expect(openFds()).toBe(before);
  });

  it('sorts raw names bytewise and handles names that are not UTF-8', async () => {
    const d = fresh('names');
    fs.mkdirSync(d);
    const names = ['B', 'a', '_', 'é', 'Z', '~', '.x'];
    for (const n of names) fs.writeFileSync(join(d, n), n);
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
    fs.writeFileSync(Buffer.concat([Buffer.from(`${d}/`), latin1]), 'x');
    const entries = [];
    for await (const e of readNar(dumpPath(d))) entries.push(Buffer.from(e.rawPath).toString('latin1'));
    expect(entries).toEqual([
      '',
      '.x',
      'B',
      'Z',
      '_',
      'a',
      'caf\u00e9',
      '~',
      Buffer.from('é').toString('latin1'),
    ]);
  });

  it('sorts by UTF-8 bytes where UTF-16 order differs (astral vs U+E000..U+FFFF)', async () => {
    const d = fresh('astral');
    fs.mkdirSync(d);
    for (const n of ['\u{1F600}', '\ue000', '\uff21', 'a']) fs.writeFileSync(join(d, n), n);
    const paths = [];
    for await (const e of readNar(dumpPath(d))) paths.push(e.path);
    expect(paths).toEqual(['', 'a', '\ue000', '\uff21', '\u{1F600}']);
  });

  it('does not follow symlinks, even at the root', async () => {
    const d = fresh('links');
    fs.mkdirSync(d);
    fs.symlinkSync('/etc', join(d, 'etc'));
    const nar = await collectBytes(dumpPath(join(d, 'etc')));
    expect(same(nar, rawNar('nix-archive-1', '(', 'type', 'symlink', 'target', '/etc', ')'))).toBe(true);
  });

  it('rejects unsupported file types', async () => {
    const d = fresh('fifo');
    fs.mkdirSync(d);
    execFileSync('mkfifo', [join(d, 'pipe')]);
    await expect(collectBytes(dumpPath(d))).rejects.toThrow(/has an unsupported type/);
    const s = fresh('sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(s, resolve));
    try {
      await expect(hashPath(s)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    } finally {
      server.close();
    }
  });

  it('accepts 100 levels, as Nix 2.8 does (the old limit of 64 refused them)', async () => {
    const root = fresh('deep');
    let p = root;
    for (let i = 0; i < 100; i++) p = join(p, 'd');
    fs.mkdirSync(p, { recursive: true });
    fs.writeFileSync(join(p, 'f'), 'deep');
    const nar = await collectBytes(dumpPath(root));
    expect((await hashPath(root)).narSize).toBe(nar.length);
    const entries = [];
    for await (const e of readNar(nar)) entries.push(e);
    expect(entries.at(-1)).toMatchObject({ type: 'regular', path: `${Array(100).fill('d').join('/')}/f` });
  });

  it('reports a missing path as IO', async () => {
    await expect(hashPath(join(tmp, 'does-not-exist'))).rejects.toMatchObject({ code: 'IO' });
  });

  it('honours an abort signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(collectBytes(dumpPath(tmp, { signal: ac.signal }))).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});

describe('restorePath', () => {
  function listTree(p: string): string[] {
    const out: string[] = [];
    const walk = (q: string, rel: string) => {
      const st = fs.lstatSync(q);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(q)}`);
      else if (st.isDirectory()) {
        out.push(`${rel}/`);
        for (const n of fs.readdirSync(q).sort()) walk(join(q, n), `${rel}/${n}`);
      } else out.push(`${rel} ${st.mode.toString(8)} ${fs.readFileSync(q, 'hex')}`);
    };
    walk(p, '');
    return out;
  }

  /** A parent with a canary beside the (not yet existing) target. */
  function arena(): { base: string; target: string; canary: string; snapshot: () => string[] } {
    const base = fresh('arena');
    fs.mkdirSync(base);
    const canary = join(base, 'canary');
    fs.mkdirSync(canary);
    fs.writeFileSync(join(canary, 'passwd'), 'original');
    const snapshot = () => listTree(base);
    return { base, target: join(base, 'target'), canary, snapshot };
  }

  it('restores random trees exactly (dumpPath of the result is the same NAR)', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbTree,
        fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 10 }),
        async (tree, sizes) => {
          const nar = await collectBytes(writeNar(treeEntries(tree)));
          const target = fresh('restored');
          await restorePath(chunks(nar, sizes), target);
          expect(same(await collectBytes(dumpPath(target)), nar)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('sets the execute bits of executables only', async () => {
    const target = fresh('exec');
    await restorePath(
      dirNar(entryTokens('a', fileTokens('x', true)), entryTokens('b', fileTokens('y'))),
      target,
    );
    expect(fs.statSync(join(target, 'a')).mode & 0o111).toBe(0o111);
    expect(fs.statSync(join(target, 'b')).mode & 0o111).toBe(0);
  });

  it('refuses an existing target and leaves it alone', async () => {
    const { target, snapshot } = arena();
    fs.mkdirSync(target);
    fs.writeFileSync(join(target, 'keep'), 'mine');
    const before = snapshot();
    await expect(restorePath(dirNar(), target)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(restorePath(rawNar('nix-archive-1', ...fileTokens('x')), target)).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect(snapshot()).toEqual(before);
  });

  const link = (name: string, target: string): Token[] =>
    entryTokens(name, ['(', 'type', 'symlink', 'target', target, ')']);
  const dir = (name: string, ...entries: Token[][]): Token[] =>
    entryTokens(name, ['(', 'type', 'directory', ...entries.flat(), ')']);

  const hostile: [string, Uint8Array, RegExp][] = [
    [
      'symlink to the canary, then a same-named directory with a file',
      dirNar(link('a', '../canary'), dir('a', entryTokens('passwd', fileTokens('pwned')))),
      /duplicate name/,
    ],
    [
      'symlink to the canary file, then a same-named regular file',
      dirNar(link('a', '../canary/passwd'), entryTokens('a', fileTokens('pwned'))),
      /duplicate name/,
    ],
    [
      'a .. directory',
      dirNar(dir('..', dir('canary', entryTokens('passwd', fileTokens('pwned'))))),
      /'\.\.'/,
    ],
    [
      'a name with a slash',
      dirNar(entryTokens('../canary/passwd', fileTokens('pwned'))),
      /'\.\.\/canary\/passwd'/,
    ],
    [
      'unsorted names (so a later duplicate would not be noticed by a naive check)',
      dirNar(entryTokens('b', fileTokens('1')), link('a', '../canary')),
      /not sorted/,
    ],
    [
      '2^60 content length',
      concatB(
        rawNar(
          'nix-archive-1',
          '(',
          'type',
          'directory',
          'entry',
          '(',
          'name',
          'f',
          'node',
          '(',
          'type',
          'regular',
        ),
        rawNar('contents', { u64: 1n << 60n }, { raw: new Uint8Array(100) }),
      ),
      /2\^53 bytes or more/,
    ],
    [
      'depth 4100',
      (() => {
        let node: Token[] = fileTokens('deep');
        for (let i = 0; i < 4100; i++) node = ['(', 'type', 'directory', ...entryTokens('d', node), ')'];
        return rawNar('nix-archive-1', ...node);
      })(),
      // Linux refuses paths over PATH_MAX (about 2000 levels here) before the NAR limit: as in Nix.
      /maximum depth of 4096|ENAMETOOLONG|name too long/,
    ],
    ['truncated stream', dirNar(entryTokens('f', fileTokens('hello world'))).subarray(0, 230), /truncated/],
    [
      'non-zero padding',
      dirNar(entryTokens('f', fileTokens('abc'))).fill(9, 8 * 29 + 3, 8 * 29 + 4),
      /non-zero padding/,
    ],
    [
      'trailing garbage',
      concatB(dirNar(entryTokens('f', fileTokens('a'))), new Uint8Array(16)),
      /after the end/,
    ],
  ];

  it.each(hostile)(
    'hostile NAR: %s — rejected, nothing outside the target, target removed',
    async (_n, nar, reason) => {
      const { target, snapshot } = arena();
      const before = snapshot();
      const err = await restorePath(chunks(nar, [100, 50, 7]), target).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixcacheError);
      expect((err as Error).message).toMatch(reason);
      expect(fs.existsSync(target)).toBe(false);
      expect(snapshot()).toEqual(before);
    },
  );

  it('removes the partial tree after an abort', async () => {
    const { target, snapshot } = arena();
    const before = snapshot();
    const ac = new AbortController();
    const nar = dirNar(entryTokens('a', fileTokens('1')), entryTokens('b', fileTokens('2')));
    async function* source() {
      yield nar.subarray(0, 300);
      ac.abort();
      yield nar.subarray(300);
    }
    await expect(restorePath(source(), target, { signal: ac.signal })).rejects.toMatchObject({
      code: 'ABORTED',
    });
    expect(fs.existsSync(target)).toBe(false);
    expect(snapshot()).toEqual(before);
  });

  describeWithCorpus('corpus', () => {
    it.each(fs.existsSync(corpusPath('nars-valid')) ? fs.readdirSync(corpusPath('nars-valid')) : [])(
      '%s restores and dumps back identically',
      async (f) => {
        const nar = new Uint8Array(fs.readFileSync(corpusPath('nars-valid', f)));
        const target = fresh('corpus');
        await restorePath(nar, target);
        expect(same(await collectBytes(dumpPath(target)), nar)).toBe(true);
      },
    );
  });
});

function concatB(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
