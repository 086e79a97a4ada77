import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatContentAddress,
  formatStorePath,
  hashBytes,
  makeFixedOutputPath,
  makeSourcePath,
  makeStorePath,
  makeTextPath,
  NixcacheError,
  parseContentAddress,
  parseHash,
  parseStorePath,
  parseStorePathBasename,
  storePathForContentAddress,
  storePathNameProblem,
} from '../../src/index.js';
import vectors from '../vectors/store-paths.json' with { type: 'json' };

describe('store paths', () => {
  it.each(vectors.text)('computes the text path $path ($from)', (v) => {
    expect(makeTextPath(v.name, v.contents, v.references)).toBe(v.path);
  });

  it.each(vectors.source_paths)('computes the source path $path ($from)', (v) => {
    expect(makeSourcePath(v.name, parseHash(v.narHash), v.references, { self: v.self })).toBe(v.path);
  });

  it.each(vectors.fixed)('computes the fixed-output path $path ($from)', (v) => {
    expect(makeFixedOutputPath(v.name, { method: v.method as 'nar', hash: parseHash(v.hash) })).toBe(v.path);
  });

  it.each(vectors.contentAddresses)('recomputes the CA claim $ca', (v) => {
    const expected = v.path ?? makeTextPath(v.name, 'abc');
    expect(storePathForContentAddress(v.name, v.ca, v.references, { self: v.self })).toBe(expected);
  });

  it('builds the fingerprint of the primitive exactly', () => {
    const inner = hashBytes('sha256', 'bar');
    expect(makeStorePath('text', inner, 'foo')).toBe('/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo');
    expect(makeStorePath('text', inner, 'foo', '/other/store')).not.toBe(
      '/other/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo',
    );
    expect(makeStorePath('text', inner, 'foo', '/other/store')).toMatch(/^\/other\/store\/[0-9a-z]{32}-foo$/);
  });

  it('treats nar+sha256 fixed outputs as source paths and refuses references on other fixed outputs', () => {
    const h = parseHash('sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh');
    expect(makeFixedOutputPath('x', { method: 'nar', hash: h })).toBe(makeSourcePath('x', h));
    expect(makeFixedOutputPath('x', { method: 'flat', hash: h })).not.toBe(makeSourcePath('x', h));
    expect(() =>
      storePathForContentAddress('x', 'fixed:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh', [
        '/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar',
      ]),
    ).toThrow(/cannot have references/);
    expect(() =>
      storePathForContentAddress(
        'x',
        'text:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
        [],
        {
          self: true,
        },
      ),
    ).toThrow(/cannot refer to itself/);
  });

  it.each(vectors.names.rejected)('rejects the name %j', (name) => {
    expect(storePathNameProblem(name)).toBeDefined();
    expect(() => parseStorePathBasename(`00bgd045z0d4icpbc2yyz4gx48ak44la-${name}`)).toThrow(NixcacheError);
  });

  it.each(vectors.names.accepted)('accepts the name %j', (name) => {
    expect(storePathNameProblem(name)).toBeUndefined();
    expect(parseStorePathBasename(`00bgd045z0d4icpbc2yyz4gx48ak44la-${name}`).name).toBe(name);
  });

  it('limits names to 211 characters', () => {
    expect(storePathNameProblem('a'.repeat(211))).toBeUndefined();
    expect(storePathNameProblem('a'.repeat(212))).toMatch(/211/);
  });

  it.each(vectors.parse.valid)('parses $path', (v) => {
    const sp = parseStorePath(v.path);
    expect(sp).toEqual({ storeDir: '/nix/store', hash: v.hash, name: v.name });
    expect(formatStorePath(sp)).toBe(`/nix/store/${v.hash}-${v.name}`);
  });

  it.each(vectors.parse.invalid)('rejects $path: $why', (v) => {
    expect(() => parseStorePath(v.path)).toThrow(NixcacheError);
  });

  it('parses paths in a custom store directory', () => {
    const sp = parseStorePath('/tmp/s/00bgd045z0d4icpbc2yyz4gx48ak44la-x', '/tmp/s');
    expect(sp.storeDir).toBe('/tmp/s');
    expect(() => parseStorePath('/nix/store/00bgd045z0d4icpbc2yyz4gx48ak44la-x', '/tmp/s')).toThrow(
      /not directly inside/,
    );
  });

  it('parses and formats content addresses', () => {
    for (const ca of [
      'fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
      'fixed:r:sha1:1ak1ymbmsfx7z8kh09jzkr3a4dvkrfjw',
      'fixed:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
      'text:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
    ]) {
      expect(formatContentAddress(parseContentAddress(ca))).toBe(ca);
    }
    expect(parseContentAddress('fixed:r:sha1:5cba3c77236ae4f9650270a27fbad375551fa60a').method).toBe('nar');
    for (const bad of [
      'fixed:r:sha256',
      'nope:sha256:abc',
      'text:sha1:1ak1ymbmsfx7z8kh09jzkr3a4dvkrfjw',
      'fixed:r:sha256-abc',
    ]) {
      expect(() => parseContentAddress(bad)).toThrow(NixcacheError);
    }
  });

  it('parses every basename it formats, and only throws NixcacheError otherwise (property)', () => {
    const nameChar = fc.constantFrom(...'abcXYZ019+-._?='.split(''));
    fc.assert(
      fc.property(fc.string({ unit: nameChar, minLength: 1, maxLength: 40 }), (name) => {
        const base = `00bgd045z0d4icpbc2yyz4gx48ak44la-${name}`;
        if (storePathNameProblem(name)) expect(() => parseStorePathBasename(base)).toThrow(NixcacheError);
        else expect(parseStorePathBasename(base).name).toBe(name);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          parseStorePath(text);
        } catch (e) {
          expect(e).toBeInstanceOf(NixcacheError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
