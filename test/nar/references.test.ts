import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNixcacheError } from '../../src/errors.js';
import { utf8 } from '../../src/internal/bytes.js';
import { createReferenceScanner, ReferenceCandidates, scanReferences } from '../../src/nar/index.js';
import { NIX32_ALPHABET } from '../../src/nix32.js';
import { chunks, oneByteAtATime } from './helpers.js';

const A = '7yyamamnf9p1q8gvljj5xgmjvrjj1x0q';
const B = '0h40zg6hakjv951nyhdad7mv9za56m3z';
const C = 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz';

/** The obvious quadratic reference: every candidate searched with indexOf over latin1 text. */
function naive(bytes: Uint8Array, candidates: string[]): Set<string> {
  const text = Buffer.from(bytes).toString('latin1');
  return new Set(candidates.filter((c) => text.includes(c)));
}

const arbHashPart = fc
  .array(fc.constantFrom(...NIX32_ALPHABET.split('')), { minLength: 32, maxLength: 32 })
  .map((cs) => cs.join(''));

describe('scanReferences', () => {
  const text = utf8(
    `#!/bin/sh\nexec /nix/store/${A}-bash-5.2/bin/bash "$@"\n# not: /nix/store/${B.slice(0, 31)}-x\n`,
  );

  it('finds the hash parts that occur, and only those', async () => {
    expect(await scanReferences(text, [A, B, C])).toEqual(new Set([A]));
    expect(await scanReferences(text, [])).toEqual(new Set());
  });

  it('finds matches that cross chunk boundaries, whatever the chunking', async () => {
    expect(await scanReferences(oneByteAtATime(text), [A, B])).toEqual(new Set([A]));
    for (let split = 0; split < text.length; split++) {
      expect(await scanReferences(chunks(text, [split]), [A, B])).toEqual(new Set([A]));
    }
  });

  it('finds overlapping and adjacent candidates inside one long nix32 run', async () => {
    const run = utf8(`xx${A}${B}yy${C.slice(0, 10)}${A.slice(5)}${B}`);
    expect(await scanReferences(chunks(run, [7, 33, 1, 1, 40]), [A, B, C])).toEqual(new Set([A, B]));
  });

  it('rejects candidates that are not hash parts', async () => {
    for (const bad of ['abc', `${A}x`, 'e'.repeat(32), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345']) {
      let err: unknown;
      try {
        await scanReferences(text, [bad]);
      } catch (e) {
        err = e;
      }
      expect(isNixcacheError(err, 'BAD_ARGUMENT')).toBe(true);
    }
  });

  it('the pass-through scanner reports as it goes', () => {
    const s = createReferenceScanner([A, B]);
    s.update(utf8(`..${A.slice(0, 20)}`));
    expect(s.result()).toEqual(new Set());
    s.update(utf8(`${A.slice(20)}..`));
    expect(s.result()).toEqual(new Set([A]));
  });

  it('agrees with a naive search on random data in random chunkings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbHashPart, { minLength: 1, maxLength: 5 }),
        fc.array(
          fc.oneof(
            fc.string({ unit: fc.constantFrom(...`${NIX32_ALPHABET}-/.eotu`.split('')), maxLength: 40 }),
            fc.nat(4).map(String),
          ),
          { maxLength: 20 },
        ),
        fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 20 }),
        async (candidates, pieces, sizes) => {
          // Mix candidates (sometimes cut short) into random nix32-heavy text.
          const text = pieces
            .map((p) =>
              /^\d$/.test(p)
                ? candidates[Number(p) % candidates.length]!.slice(Number(p) % 3 === 0 ? 1 : 0)
                : p,
            )
            .join('');
          const bytes = utf8(text);
          expect(await scanReferences(chunks(bytes, sizes), candidates)).toEqual(naive(bytes, candidates));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('compiled candidates serve many scans, interleaved, each with its own findings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbHashPart, { minLength: 1, maxLength: 8 }),
        fc.array(fc.array(fc.nat(9), { maxLength: 6 }), { minLength: 1, maxLength: 5 }),
        async (candidates, texts) => {
          const compiled = new ReferenceCandidates(candidates);
          expect(compiled.size).toBe(new Set(candidates).size);
          // Each text names some candidates (9: none) between bytes that are not nix32.
          const bytes = texts.map((picks) =>
            utf8(picks.map((p) => (p < candidates.length ? `/${candidates[p]}-x` : '/e-')).join(' ')),
          );
          const scanners = bytes.map(() => createReferenceScanner(compiled));
          // Fed in turns, a byte at a time: no scanner sees another's bytes or findings.
          const longest = Math.max(...bytes.map((b) => b.length));
          for (let at = 0; at < longest; at++)
            bytes.forEach((b, i) => {
              if (at < b.length) scanners[i]!.update(b.subarray(at, at + 1));
            });
          bytes.forEach((b, i) => {
            expect(scanners[i]!.result()).toEqual(naive(b, candidates));
          });
          for (const b of bytes) expect(await scanReferences(b, compiled)).toEqual(naive(b, candidates));
        },
      ),
      { numRuns: 200 },
    );
    expect(() => new ReferenceCandidates([A, 'not a hash part'])).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    );
  });

  it('is fast on adversarial input (one long nix32 run)', async () => {
    const big = new Uint8Array(8 << 20).fill(0x61); // 'a' is a nix32 digit: every window is checked
    const t = performance.now();
    expect(await scanReferences(chunks(big, Array(100).fill(1 << 16)), [A, B])).toEqual(new Set());
    const ms = performance.now() - t;
    expect(ms).toBeLessThan(5000);
  });
});
