import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNixcacheError } from '../../src/errors.js';
import { collectBytes } from '../../src/internal/iter.js';
import {
  formatNarListing,
  hashNar,
  type NarListing,
  NarListingBuilder,
  narListing,
  parseNarListing,
  writeNar,
} from '../../src/nar/index.js';
import { corpusPath, describeWithCorpus } from '../helpers/env.js';
import { arbTree, dirNar, entryTokens, fileTokens, treeEntries } from './helpers.js';

describeWithCorpus('corpus listings', () => {
  it('nixos-release.ls parses and formats back byte for byte (sorted style)', () => {
    const text = readFileSync(corpusPath('nar-listing', 'nixos-release.ls'), 'utf8');
    const listing = parseNarListing(text);
    expect(listing.root.type).toBe('directory');
    expect(formatNarListing(listing, { style: 'sorted' })).toBe(text.trimEnd());
  });

  it('deep.json (a bare node) parses', () => {
    const listing = parseNarListing(readFileSync(corpusPath('nar-listing', 'deep.json'), 'utf8'));
    expect(listing.root).toMatchObject({
      type: 'directory',
      entries: {
        bar: { type: 'directory', entries: { baz: { type: 'regular', size: 19, executable: true } } },
        foo: { type: 'regular', size: 15, executable: false },
      },
    });
    expect(formatNarListing(listing, { style: 'nix-2.35' })).toBe(
      JSON.stringify({
        root: JSON.parse(readFileSync(corpusPath('nar-listing', 'deep.json'), 'utf8')),
        version: 1,
      }),
    );
  });

  it('shallow.json (entries not expanded) parses', () => {
    const listing = parseNarListing(readFileSync(corpusPath('nar-listing', 'shallow.json'), 'utf8'));
    expect(listing.root).toEqual({ type: 'directory', entries: { bar: {}, foo: {} } });
    expect(formatNarListing(listing)).toBe(
      '{"version":1,"root":{"type":"directory","entries":{"bar":{},"foo":{}}}}',
    );
  });
});

describe('narListing / formatNarListing', () => {
  const nar = dirNar(
    entryTokens('a', fileTokens('hi\n')),
    entryTokens('d', ['(', 'type', 'directory', ...entryTokens('x', fileTokens('#!/bin/sh\n', true)), ')']),
    entryTokens('e', fileTokens('')),
    entryTokens('l', ['(', 'type', 'symlink', 'target', '/nowhere', ')']),
  );

  it('matches what Nix 2.8 wrote for the same tree', async () => {
    // Captured from `nix copy --to 'file://…?write-nar-listing=1'` (Nix 2.8) for this tree.
    expect(formatNarListing(await narListing(nar))).toBe(
      '{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular","size":3,"narOffset":232},' +
        '"d":{"type":"directory","entries":{"x":{"type":"regular","size":10,"executable":true,"narOffset":592}}},' +
        '"e":{"type":"regular","size":0,"narOffset":824},"l":{"type":"symlink","target":"/nowhere"}}}}',
    );
  });

  it('writes the other styles', async () => {
    const ls = await narListing(nar);
    expect(formatNarListing(ls, { style: 'sorted' })).toBe(
      '{"root":{"entries":{"a":{"narOffset":232,"size":3,"type":"regular"},' +
        '"d":{"entries":{"x":{"executable":true,"narOffset":592,"size":10,"type":"regular"}},"type":"directory"},' +
        '"e":{"narOffset":824,"size":0,"type":"regular"},"l":{"target":"/nowhere","type":"symlink"}},"type":"directory"},"version":1}',
    );
    const modern = formatNarListing(ls, { style: 'nix-2.35' });
    expect(modern).toContain('"a":{"executable":false,"narOffset":232');
    expect(parseNarListing(modern)).toEqual(ls);
  });

  it('sorts entries bytewise even when object key order differs (integer-like names)', () => {
    const entries = Object.create(null);
    entries.b = { type: 'regular', size: 1 };
    entries['10'] = { type: 'regular', size: 1 };
    entries['9'] = { type: 'regular', size: 1 };
    entries.B = { type: 'regular', size: 1 };
    const text = formatNarListing({ version: 1, root: { type: 'directory', entries } });
    expect(text).toContain(
      '"entries":{"10":{"type":"regular","size":1},"9":{"type":"regular","size":1},"B":',
    );
  });

  it('escapes strings as Nix 2.8 does', () => {
    const entries = Object.create(null);
    entries['q"\\\n\r\t\u0001\u007fé'] = { type: 'symlink', target: '\b\f' };
    const text = formatNarListing({ version: 1, root: { type: 'directory', entries } });
    expect(text).toBe(
      '{"version":1,"root":{"type":"directory","entries":{"q\\"\\\\\\n\\r\\t\\u0001\u007fé":' +
        '{"type":"symlink","target":"\\u0008\\u000c"}}}}',
    );
    expect(formatNarListing(parseNarListing(text), { style: 'sorted' })).toContain('"target":"\\b\\f"');
  });

  it('keeps __proto__ as an ordinary name', async () => {
    const ls = await narListing(dirNar(entryTokens('__proto__', fileTokens('x'))));
    expect(formatNarListing(ls)).toContain('"__proto__":{"type":"regular"');
    const parsed = parseNarListing(formatNarListing(ls));
    expect(Object.keys((parsed.root as { entries: object }).entries)).toEqual(['__proto__']);
  });

  it('random trees: format → parse → format is stable and narOffsets point at the contents', async () => {
    await fc.assert(
      fc.asyncProperty(arbTree, async (tree) => {
        const nar = await collectBytes(writeNar(treeEntries(tree)));
        const builder = new NarListingBuilder();
        await hashNar(nar, { visitor: builder });
        const ls = builder.listing;
        expect(ls).toEqual(await narListing(nar));
        for (const style of ['nix-2.8', 'sorted', 'nix-2.35'] as const) {
          const text = formatNarListing(ls, { style });
          expect(formatNarListing(parseNarListing(text), { style })).toBe(text);
        }
        const check = (node: NarListing['root'], t: typeof tree): void => {
          if (t.type === 'regular' && node.type === 'regular') {
            const at = node.narOffset!;
            expect(Buffer.from(nar.subarray(at, at + node.size)).equals(Buffer.from(t.contents))).toBe(true);
          } else if (t.type === 'directory' && node.type === 'directory') {
            for (const [name, child] of t.entries) check(node.entries![name]!, child);
          } else {
            expect(node.type).toBe(t.type);
          }
        };
        check(ls.root, tree);
      }),
      { numRuns: 100 },
    );
  });
});

describe('parseNarListing rejects', () => {
  it.each([
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /must be a JSON object/],
    ['another version', '{"version":2,"root":{"type":"directory","entries":{}}}', /unsupported version 2/],
    [
      'an unknown field',
      '{"version":1,"root":{"type":"symlink","target":"x","extra":1}}',
      /unknown field "extra"/,
    ],
    ['an unknown type', '{"version":1,"root":{"type":"fifo"}}', /unknown node type "fifo"/],
    ['a negative size', '{"version":1,"root":{"type":"regular","size":-1}}', /"size" must be/],
    [
      'a fractional offset',
      '{"version":1,"root":{"type":"regular","size":1,"narOffset":1.5}}',
      /"narOffset" must be/,
    ],
    [
      'a string executable',
      '{"version":1,"root":{"type":"regular","size":1,"executable":"yes"}}',
      /"executable" must be/,
    ],
    ['an empty target', '{"version":1,"root":{"type":"symlink","target":""}}', /empty symlink target/],
    [
      'a .. name',
      '{"version":1,"root":{"type":"directory","entries":{"..":{}}}}',
      /invalid file name "\.\."/,
    ],
    [
      'a name with /',
      '{"version":1,"root":{"type":"directory","entries":{"a/b":{}}}}',
      /invalid file name "a\/b"/,
    ],
    ['an empty name', '{"version":1,"root":{"type":"directory","entries":{"":{}}}}', /invalid file name ""/],
    ['a NUL name', '{"version":1,"root":{"type":"directory","entries":{"a\\u0000":{}}}}', /NUL/],
    [
      'a long name',
      `{"version":1,"root":{"type":"directory","entries":{"${'x'.repeat(256)}":{}}}}`,
      /too long/,
    ],
  ])('%s', (_name, text, reason) => {
    let err: unknown;
    try {
      parseNarListing(text);
    } catch (e) {
      err = e;
    }
    expect(isNixcacheError(err, 'BAD_LISTING')).toBe(true);
    expect((err as Error).message).toMatch(reason);
  });

  it('too deep a listing', () => {
    let node = '{}';
    for (let i = 0; i < 4100; i++) node = `{"type":"directory","entries":{"d":${node}}}`;
    expect(() => parseNarListing(`{"version":1,"root":${node}}`)).toThrow(/maximum depth of 4096/);
  });

  it('a listing 4095 levels deep parses and formats back (no stack overflow)', () => {
    let node = '{"type":"regular","size":0}';
    for (let i = 0; i < 4095; i++) node = `{"type":"directory","entries":{"d":${node}}}`;
    const text = `{"version":1,"root":${node}}`;
    expect(formatNarListing(parseNarListing(text))).toBe(text);
  });
});
