import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNixcacheError, NixcacheError } from '../../src/errors.js';
import { formatHash } from '../../src/hash/index.js';
import { toHex, utf8 } from '../../src/internal/bytes.js';
import { collectBytes } from '../../src/internal/iter.js';
import { hashNar, NarDecoder, narListing, readNar, writeNar } from '../../src/nar/index.js';
import { corpusPath, describeWithCorpus } from '../helpers/env.js';
import {
  arbTree,
  chunks,
  dirNar,
  entryTokens,
  fileTokens,
  oneByteAtATime,
  rawNar,
  summarise,
  type Token,
  treeEntries,
} from './helpers.js';

const validDir = corpusPath('nars-valid');
const invalidDir = corpusPath('nars-invalid');
const load = (dir: string, f: string) => new Uint8Array(readFileSync(`${dir}/${f}`));

async function roundTrip(nar: Uint8Array | Iterable<Uint8Array>): Promise<Uint8Array> {
  return collectBytes(writeNar(readNar(nar)));
}

async function expectBadNar(nar: Uint8Array | Iterable<Uint8Array>, message: RegExp): Promise<NixcacheError> {
  let error: unknown;
  try {
    for await (const e of readNar(nar)) if (e.contents) for await (const _ of e.contents);
  } catch (e) {
    error = e;
  }
  expect(error, 'the NAR should be rejected').toBeInstanceOf(NixcacheError);
  const err = error as NixcacheError;
  expect(err.code).toBe('BAD_NAR');
  expect(err.message).toMatch(message);
  expect(err.message).toMatch(/at byte offset \d+ in (the root entry|entry '.*')/);
  expect(typeof err.data.offset).toBe('number');
  expect(typeof err.data.path).toBe('string');
  return err;
}

describeWithCorpus('corpus: valid NARs', () => {
  const files = readdirSync(validDir).filter((f) => f.endsWith('.nar'));

  it('has the expected files', () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
  });

  it.each(files)('%s parses and re-encodes to identical bytes', async (f) => {
    const nar = load(validDir, f);
    expect(Buffer.from(await roundTrip(nar)).equals(Buffer.from(nar))).toBe(true);
    const { narSize } = await hashNar(nar);
    expect(narSize).toBe(nar.length);
  });

  it.each([
    ['helloworld.nar', 128, '03e7f63be30b065d78bcf615f5473545fdb4eb69aa416f43495b4e05cdfb8040'],
    ['symlink.nar', 136, '097d397e9b5826384eaa16c457715d1c1a51670313ead0f58566e0b232539cf1'],
    ['complicated.nar', 840, 'ebd52279a8df024c9fd5718de4103bf5e760dc7f2cf49044ee7dea87ab16911a'],
  ])('%s has the known size and sha256', async (f, size, hex) => {
    const { narHash, narSize } = await hashNar(load(validDir, f));
    expect(narSize).toBe(size);
    expect(formatHash(narHash, 'base16')).toBe(`sha256:${hex}`);
  });

  it('helloworld.nar: nix32 hash and entry details', async () => {
    const nar = load(validDir, 'helloworld.nar');
    expect(formatHash((await hashNar(nar)).narHash)).toBe(
      'sha256:0h40zg6hakjv951nyhdad7mv9za56m3za5gnpiw5s1hbwcxzdrq3',
    );
    const { entries } = await summarise(nar);
    expect(entries).toEqual([
      {
        path: '',
        type: 'regular',
        executable: false,
        size: 12,
        narOffset: 96,
        contents: Buffer.from('Hello World!').toString('hex'),
      },
    ]);
  });

  it('complicated.nar: entries in archive order', async () => {
    const { entries, error } = await summarise(load(validDir, 'complicated.nar'));
    expect(error).toBeUndefined();
    expect(entries.map((e) => [e.path, e.type, e.target])).toEqual([
      ['', 'directory', undefined],
      ['.keep', 'regular', undefined],
      ['aa', 'symlink', '/nix/store/somewhereelse'],
      ['keep', 'directory', undefined],
      ['keep/.keep', 'regular', undefined],
    ]);
  });

  it.each(files)('%s: 1 byte at a time and random splits give the same entries', async (f) => {
    const nar = load(validDir, f);
    const whole = await summarise(nar);
    expect(await summarise(oneByteAtATime(nar))).toEqual(whole);
    fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 60 }), async (sizes) => {
        expect(await summarise(chunks(nar, sizes))).toEqual(whole);
      }),
      { numRuns: 30 },
    );
  });
});

describeWithCorpus('corpus: invalid NARs are rejected for the reason their name gives', () => {
  const reasons: Record<string, RegExp> = {
    'dot.nar': /invalid file name '\.'/,
    'dotdot.nar': /invalid file name '\.\.'/,
    'slash.nar': /invalid file name 'x\/y'/,
    'nul-character.nar': /invalid file name .*NUL/,
    'empty.nar': /invalid file name '' \(empty name\)/,
    'executable-after-contents.nar': /expected tag '\)', got 'executable'/,
    'name-after-node.nar': /expected tag 'name'/,
    'invalid-tag-instead-of-contents.nar': /expected tag 'contents', got 'AAAAAAAA'/,
    'regular-one-byte-non-zero-padding.nar': /non-zero padding/,
    'regular-truncated-large-contents.nar': /truncated/,
    'regular-truncated-padding.nar': /truncated/,
  };
  const files = () => readdirSync(invalidDir).filter((f) => f.endsWith('.nar'));

  it('every corpus file has an expected reason', () => {
    expect(files().sort()).toEqual(Object.keys(reasons).sort());
  });

  it.each(Object.entries(reasons))('%s', async (f, reason) => {
    const nar = load(invalidDir, f);
    const err = await expectBadNar(nar, reason);
    // Same error whatever the chunking.
    await expectBadNar(oneByteAtATime(nar), reason);
    await expect(hashNar(nar)).rejects.toThrow(err.message);
    await expect(narListing(chunks(nar, [3, 5, 7]))).rejects.toThrow(err.message);
  });
});

describe('hand-built hostile NARs', () => {
  const cases: [string, Uint8Array | Uint8Array[], RegExp][] = [
    [
      'symlink followed by a same-named directory',
      dirNar(
        entryTokens('a', ['(', 'type', 'symlink', 'target', '/etc', ')']),
        entryTokens('a', ['(', 'type', 'directory', ...entryTokens('passwd', fileTokens('x')), ')']),
      ),
      /not sorted \(duplicate name: 'a' after 'a'\)/,
    ],
    [
      'unsorted names',
      dirNar(entryTokens('b', fileTokens('1')), entryTokens('a', fileTokens('2'))),
      /not sorted \(unsorted names: 'a' after 'b'\)/,
    ],
    [
      'names sorted by locale, not bytewise',
      dirNar(entryTokens('a', fileTokens('1')), entryTokens('B', fileTokens('2'))),
      /not sorted/,
    ],
    ['.. entry', dirNar(entryTokens('..', ['(', 'type', 'directory', ')'])), /invalid file name '\.\.'/],
    ['name with a slash', dirNar(entryTokens('../x', fileTokens('1'))), /invalid file name '\.\.\/x'/],
    [
      '2^60 content length',
      rawNar(
        'nix-archive-1',
        '(',
        'type',
        'regular',
        'contents',
        { u64: 1n << 60n },
        { raw: new Uint8Array(64) },
      ),
      /2\^53 bytes or more/,
    ],
    [
      '2^60 name length',
      rawNar('nix-archive-1', '(', 'type', 'directory', 'entry', '(', 'name', { u64: 1n << 60n }),
      /string is too long: file name of over 2\^53 bytes/,
    ],
    [
      '2^60 tag length',
      rawNar('nix-archive-1', { u64: 1n << 60n }, { raw: new Uint8Array(64) }),
      /string is too long: tag/,
    ],
    ['bad magic', rawNar('nix-archive-2', '(', 'type', 'directory', ')'), /doesn't look like a Nix archive/],
    ['empty input', new Uint8Array(0), /truncated/],
    [
      'truncated stream',
      rawNar('nix-archive-1', '(', 'type', 'directory', ...entryTokens('a', fileTokens('hello'))).subarray(
        0,
        200,
      ),
      /truncated/,
    ],
    ['missing final )', rawNar('nix-archive-1', '(', 'type', 'directory'), /truncated/],
    [
      'non-zero padding in a name',
      dirNar(
        entryTokens(
          { raw: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0x61, 0, 0, 7, 0, 0, 0, 0]) },
          fileTokens('1'),
        ),
      ),
      /non-zero padding/,
    ],
    [
      'non-zero padding after contents',
      rawNar('nix-archive-1', ...fileTokens('abc')).fill(1, 8 * 12 + 3, 8 * 12 + 4),
      /non-zero padding/,
    ],
    [
      'executable marker with a value',
      rawNar('nix-archive-1', '(', 'type', 'regular', 'executable', 'yes', 'contents', 'x', ')'),
      /executable marker must be empty/,
    ],
    ['unknown type', rawNar('nix-archive-1', '(', 'type', 'fifo', ')'), /unknown file type 'fifo'/],
    [
      'empty symlink target',
      rawNar('nix-archive-1', '(', 'type', 'symlink', 'target', '', ')'),
      /invalid symlink target '': empty symlink target/,
    ],
    [
      'symlink target with NUL',
      rawNar('nix-archive-1', '(', 'type', 'symlink', 'target', 'a\0b', ')'),
      /symlink target contains NUL/,
    ],
    [
      'symlink target of 4096 bytes',
      rawNar('nix-archive-1', '(', 'type', 'symlink', 'target', 'x'.repeat(4096), ')'),
      /string is too long: symlink target of 4096 bytes \(max 4095\)/,
    ],
    [
      'name of 256 bytes',
      dirNar(entryTokens('n'.repeat(256), fileTokens(''))),
      /file name of 256 bytes \(max 255\)/,
    ],
    ['tag of 33 bytes', rawNar('nix-archive-1', '(', 'type', 'x'.repeat(33)), /tag of 33 bytes \(max 32\)/],
    [
      'trailing bytes after the root',
      concat(rawNar('nix-archive-1', ...fileTokens('x')), new Uint8Array(8)),
      /unexpected data after the end of the archive/,
    ],
    [
      'two roots',
      concat(rawNar('nix-archive-1', ...fileTokens('x')), rawNar('nix-archive-1', ...fileTokens('y'))),
      /unexpected data after the end/,
    ],
    [
      'contents tag missing',
      rawNar('nix-archive-1', '(', 'type', 'regular', ')'),
      /expected tag 'contents', got '\)'/,
    ],
    ['entry without (', dirNar(['entry', 'name', 'a']), /expected tag '\(', got 'name'/],
  ];

  function deepNar(levels: number): Uint8Array {
    // Built from repeated byte blocks: spreading 100k levels of tokens would overflow the stack.
    const head = rawNar('nix-archive-1', '(', 'type', 'directory');
    const open = rawNar('entry', '(', 'name', 'd', 'node', '(', 'type', 'directory');
    const close = rawNar(')', ')');
    const end = rawNar(')');
    const out = new Uint8Array(head.length + levels * (open.length + close.length) + end.length);
    let at = 0;
    const put = (b: Uint8Array) => {
      out.set(b, at);
      at += b.length;
    };
    put(head);
    for (let i = 0; i < levels; i++) put(open);
    put(end);
    for (let i = 0; i < levels; i++) put(close);
    return out;
  }
  cases.push(['depth 4100', deepNar(4100), /nesting exceeds maximum depth of 4096/]);
  cases.push(['depth 4096', deepNar(4096), /nesting exceeds maximum depth of 4096/]);
  cases.push(['depth 100000', deepNar(100_000), /nesting exceeds maximum depth of 4096/]);

  it('accepts depth 100 and 4095 (Nix 2.8 has no limit of 64), and writes them back identically', async () => {
    for (const levels of [100, 4095]) {
      const nar = deepNar(levels);
      const entries = [];
      for await (const e of readNar(nar)) entries.push(e);
      expect(entries.length).toBe(levels + 1);
      expect(entries.at(-1)?.depth).toBe(levels);
      expect(Buffer.compare(await collectBytes(writeNar(entries)), nar)).toBe(0);
    }
  });

  it.each(cases)('%s', async (_name, nar, reason) => {
    await expectBadNar(nar, reason);
    const bytes = nar instanceof Uint8Array ? nar : concat(...nar);
    await expectBadNar(oneByteAtATime(bytes), reason);
    await expect(hashNar(bytes)).rejects.toThrow(reason);
  });

  it('depth 63 is accepted', async () => {
    const open: Token[] = ['nix-archive-1', '(', 'type', 'directory'];
    for (let i = 0; i < 63; i++) open.push('entry', '(', 'name', 'd', 'node', '(', 'type', 'directory');
    const close: Token[] = [')'];
    for (let i = 0; i < 63; i++) close.push(')', ')');
    const nar = rawNar(...open, ...close);
    const { entries, error } = await summarise(nar);
    expect(error).toBeUndefined();
    expect(entries).toHaveLength(64);
    expect(Buffer.from(await roundTrip(nar)).equals(Buffer.from(nar))).toBe(true);
  });

  it('a 2^60 content length does not allocate or wait for data', async () => {
    let pulled = 0;
    function* source() {
      yield rawNar('nix-archive-1', '(', 'type', 'regular', 'contents', { u64: 1n << 60n });
      for (;;) {
        pulled++;
        yield new Uint8Array(1024);
      }
    }
    await expect(hashNar(source())).rejects.toThrow(/2\^53 bytes or more/);
    expect(pulled).toBe(0);
  });

  it('a large declared (but honest-looking) size streams without buffering until truncation', async () => {
    const head = rawNar('nix-archive-1', '(', 'type', 'regular', 'contents', { u64: 1n << 40n });
    const used = process.memoryUsage().rss;
    let n = 0;
    function* source() {
      yield head;
      const block = new Uint8Array(1 << 20);
      for (let i = 0; i < 64; i++) {
        n++;
        yield block;
      }
    }
    await expect(hashNar(source())).rejects.toThrow(/truncated archive.*file contents/);
    expect(n).toBe(64);
    expect(process.memoryUsage().rss - used).toBeLessThan(48 << 20);
  });

  it('allowTrailingBytes accepts and ignores what follows the root', async () => {
    const nar = rawNar('nix-archive-1', ...fileTokens('x'));
    const withTail = concat(nar, utf8('garbage!'));
    const expected = await hashNar(nar);
    const got = await hashNar(chunks(withTail, [50, 100]), { allowTrailingBytes: true });
    expect(got.narSize).toBe(nar.length);
    expect(toHex(got.narHash.digest)).toBe(toHex(expected.narHash.digest));
    const entries = await collect(readNar(withTail, { allowTrailingBytes: true }));
    expect(entries).toHaveLength(1);
  });

  it('valid entries before the problem are still delivered', async () => {
    const nar = dirNar(
      entryTokens('a', fileTokens('1')),
      entryTokens('c', fileTokens('2')),
      entryTokens('b', fileTokens('3')),
    );
    const { entries, error } = await summarise(nar);
    expect(entries.map((e) => e.path)).toEqual(['', 'a', 'c']);
    expect(error).toMatch(/not sorted/);
  });

  it('the decoder stays failed after an error', () => {
    const d = new NarDecoder();
    expect(() => d.write(rawNar('nix-archive-2'))).toThrow(NixcacheError);
    expect(() => d.write(new Uint8Array(8))).toThrow(/after an error/);
  });
});

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('readNar streaming behaviour', () => {
  const nar = dirNar(
    entryTokens('big', fileTokens('x'.repeat(10_000))),
    entryTokens('exe', fileTokens('#!', true)),
    entryTokens('link', ['(', 'type', 'symlink', 'target', 'big', ')']),
  );

  it('skips unread contents automatically', async () => {
    const seen: string[] = [];
    for await (const e of readNar(chunks(nar, Array(100).fill(97))))
      seen.push(`${e.path}:${e.type}:${e.size ?? ''}`);
    expect(seen).toEqual([':directory:', 'big:regular:10000', 'exe:regular:2', 'link:symlink:']);
  });

  it('passes content chunks through without copying', async () => {
    const big = new Uint8Array(1 << 20).fill(7);
    const source = [
      rawNar('nix-archive-1', '(', 'type', 'regular', 'contents', { u64: BigInt(big.length) }),
      big,
      rawNar(')'),
    ];
    for await (const e of readNar(source)) {
      const parts = await collect(e.contents!);
      expect(parts).toHaveLength(1);
      expect(parts[0]!.buffer).toBe(big.buffer);
    }
  });

  it('refuses contents read after moving on, or read twice', async () => {
    const it = readNar(nar)[Symbol.asyncIterator]();
    await it.next();
    const big = (await it.next()).value;
    await it.next();
    await expect(collect(big.contents)).rejects.toThrow(/after moving to the next entry/);
    const it2 = readNar(nar)[Symbol.asyncIterator]();
    await it2.next();
    const big2 = (await it2.next()).value;
    await collect(big2.contents);
    expect(() => big2.contents[Symbol.asyncIterator]()).toThrow(/only once/);
  });

  it('stops reading its source when the consumer stops', async () => {
    let returned = false;
    async function* source() {
      try {
        yield nar.subarray(0, 200);
        yield nar.subarray(200);
      } finally {
        returned = true;
      }
    }
    for await (const _ of readNar(source())) break;
    expect(returned).toBe(true);
  });

  it('honours an abort signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(collect(readNar(nar, { signal: ac.signal }))).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('writeNar refuses invalid input', () => {
  const bad: [string, Parameters<typeof writeNar>[0], RegExp][] = [
    ['no entries', [], /no entries/],
    ['no root first', [{ path: 'a', type: 'regular' }], /first entry must be the root/],
    [
      'two roots',
      [
        { path: '', type: 'directory' },
        { path: '', type: 'directory' },
      ],
      /more than one root/,
    ],
    [
      'unsorted',
      [
        { path: '', type: 'directory' },
        { path: 'b', type: 'regular' },
        { path: 'a', type: 'regular' },
      ],
      /not sorted/,
    ],
    [
      'locale order',
      [
        { path: '', type: 'directory' },
        { path: 'a', type: 'regular' },
        { path: 'B', type: 'regular' },
      ],
      /not sorted/,
    ],
    [
      'duplicate',
      [
        { path: '', type: 'directory' },
        { path: 'a', type: 'symlink', target: '/' },
        { path: 'a', type: 'directory' },
      ],
      /duplicate name/,
    ],
    [
      'child before parent',
      [
        { path: '', type: 'directory' },
        { path: 'a/b', type: 'regular' },
      ],
      /not inside the directory being written/,
    ],
    [
      'child of a file',
      [
        { path: '', type: 'directory' },
        { path: 'a', type: 'regular' },
        { path: 'a/b', type: 'regular' },
      ],
      /not inside the directory being written/,
    ],
    [
      'entry after a file root',
      [
        { path: '', type: 'regular' },
        { path: 'a', type: 'regular' },
      ],
      /after the root, which is not a directory/,
    ],
    [
      'dot name',
      [
        { path: '', type: 'directory' },
        { path: '.', type: 'regular' },
      ],
      /invalid file name '\.'/,
    ],
    [
      'dotdot name',
      [
        { path: '', type: 'directory' },
        { path: '..', type: 'directory' },
      ],
      /invalid file name '\.\.'/,
    ],
    [
      'NUL in name',
      [
        { path: '', type: 'directory' },
        { path: 'a\0', type: 'regular' },
      ],
      /NUL/,
    ],
    [
      'empty component',
      [
        { path: '', type: 'directory' },
        { path: 'a/', type: 'directory' },
      ],
      /invalid file name|not inside/,
    ],
    ['symlink without target', [{ path: '', type: 'symlink' }], /without a target/],
    ['empty target', [{ path: '', type: 'symlink', target: '' }], /empty symlink target/],
    ['target with NUL', [{ path: '', type: 'symlink', target: 'a\0' }], /contains NUL/],
    ['target too long', [{ path: '', type: 'symlink', target: 'x'.repeat(4096) }], /too long/],
    [
      'name too long',
      [
        { path: '', type: 'directory' },
        { path: 'x'.repeat(256), type: 'directory' },
      ],
      /too long/,
    ],
    [
      'size mismatch (bytes)',
      [{ path: '', type: 'regular', size: 3, contents: utf8('ab') }],
      /declared size 3 but 2/,
    ],
    [
      'size missing for a stream',
      [{ path: '', type: 'regular', contents: [utf8('ab')] }],
      /needs a valid size/,
    ],
    [
      'stream too long',
      [{ path: '', type: 'regular', size: 1, contents: [utf8('ab')] }],
      /longer than the declared size/,
    ],
    [
      'stream too short',
      [{ path: '', type: 'regular', size: 5, contents: [utf8('ab')] }],
      /declared size 5 but 2/,
    ],
    [
      'depth 4096',
      [
        { path: '', type: 'directory' },
        ...Array.from({ length: 4096 }, (_, i) => ({
          path: Array(i + 1)
            .fill('d')
            .join('/'),
          type: 'directory' as const,
        })),
      ],
      /maximum depth of 4096/,
    ],
  ];

  it.each(bad)('%s', async (_name, entries, reason) => {
    const err = await collectBytes(writeNar(entries)).catch((e: unknown) => e);
    expect(isNixcacheError(err, 'BAD_NAR')).toBe(true);
    expect((err as Error).message).toMatch(reason);
  });

  it('writes a symlink, an executable and nested directories like Nix', async () => {
    const nar = await collectBytes(
      writeNar([
        { path: '', type: 'directory' },
        { path: 'a', type: 'directory' },
        { path: 'a/x', type: 'regular', executable: true, size: 3, contents: [utf8('a'), utf8('bc')] },
        { path: 'b', type: 'symlink', target: 'a/x' },
      ]),
    );
    expect(
      Buffer.from(nar).equals(
        Buffer.from(
          dirNar(
            entryTokens('a', ['(', 'type', 'directory', ...entryTokens('x', fileTokens('abc', true)), ')']),
            entryTokens('b', ['(', 'type', 'symlink', 'target', 'a/x', ')']),
          ),
        ),
      ),
    ).toBe(true);
  });

  it('accepts raw byte paths for names that are not UTF-8', async () => {
    const name = new Uint8Array([0x63, 0x61, 0x66, 0xe9]);
    const nar = await collectBytes(
      writeNar([
        { path: '', type: 'directory' },
        { path: name, type: 'regular', contents: utf8('x') },
      ]),
    );
    expect(Buffer.from(nar).equals(Buffer.from(dirNar(entryTokens(name, fileTokens('x')))))).toBe(true);
    const entries = await collect(readNar(nar));
    expect(Buffer.from(entries[1]!.rawPath).equals(Buffer.from(name))).toBe(true);
    expect(Buffer.from(await roundTrip(nar)).equals(Buffer.from(nar))).toBe(true);
  });
});

describe('properties', () => {
  it('random trees: writeNar → readNar → writeNar is the identity, in any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbTree,
        fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 30 }),
        async (tree, sizes) => {
          const entries = treeEntries(tree);
          const nar = await collectBytes(writeNar(entries));
          const back = await roundTrip(chunks(nar, sizes));
          expect(Buffer.from(back).equals(Buffer.from(nar))).toBe(true);
          const read = await summarise(chunks(nar, sizes));
          expect(read.error).toBeUndefined();
          expect(read.entries.map((e) => `${e.type}:${e.path}`)).toEqual(
            entries.map((e) => `${e.type}:${e.path}`),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('random byte flips of valid NARs only ever throw NixcacheError', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbTree,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(40),
        async (tree, flips, cut) => {
          const nar = await collectBytes(writeNar(treeEntries(tree)));
          for (const [at, x] of flips) {
            const i = at % nar.length;
            nar[i] = nar[i]! ^ x;
          }
          const input = cut > 30 ? nar.subarray(0, Math.max(0, nar.length - cut)) : nar;
          const consume = async () => {
            for await (const e of readNar(input)) if (e.contents) for await (const _ of e.contents);
          };
          for (const run of [consume, () => hashNar(input), () => narListing(chunks(input, [5, 9]))]) {
            try {
              await run();
            } catch (e) {
              if (!(e instanceof NixcacheError)) throw e;
              expect(e.code).toBe('BAD_NAR');
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
