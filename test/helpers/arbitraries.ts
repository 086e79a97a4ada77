/** fast-check arbitraries for the format layer, shared by property tests. */
import fc from 'fast-check';
import { formatHash, type NarInfo } from '../../src/index.js';

/** Arbitrary NarInfos as a writer would build them. */
export const nix32Char = fc.constantFrom(...'0123456789abcdfghijklmnpqrsvwxyz'.split(''));
export const hashPart = fc.string({ unit: nix32Char, minLength: 32, maxLength: 32 });
const name = fc
  .string({ unit: fc.constantFrom(...'abcXYZ019+-._?='.split('')), minLength: 1, maxLength: 30 })
  .filter((n) => !/^\.\.?(-|$)/.test(n));
export const basename = fc.tuple(hashPart, name).map(([h, n]) => `${h}-${n}`);
const sha256 = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((digest) => ({ algorithm: 'sha256' as const, digest }));
const sig = fc
  .tuple(
    fc.constantFrom('cache.example.org-1', 'a', 'a-1', 'z'),
    fc.uint8Array({ minLength: 64, maxLength: 64 }),
  )
  .map(([n, b]) => `${n}:${Buffer.from(b).toString('base64')}`);
export const arbitraryNarInfo: fc.Arbitrary<NarInfo> = fc
  .record({
    storePath: basename.map((b) => `/nix/store/${b}`),
    url: fc.string({ unit: nix32Char, minLength: 1, maxLength: 52 }).map((s) => `nar/${s}.nar.xz`),
    compression: fc.constantFrom('xz', 'none', 'zstd', 'bzip2', 'br', 'gzip'),
    fileHash: fc.option(sha256, { nil: undefined }),
    fileSize: fc.option(fc.nat(), { nil: undefined }),
    narHash: sha256,
    narSize: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    references: fc.uniqueArray(basename, { maxLength: 5 }).map((r) => r.sort()),
    deriver: fc.option(
      basename.map((b) => `${b}.drv`),
      { nil: undefined },
    ),
    sigs: fc.uniqueArray(sig, { maxLength: 3 }),
    ca: fc.option(
      sha256.map((h) => `fixed:r:sha256:${formatHash(h).slice(7)}`),
      { nil: undefined },
    ),
  })
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as NarInfo);
