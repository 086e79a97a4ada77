/**
 * bench/synthetic-cache.ts feeds the scale benchmarks (and later tests): its narinfos must be
 * what Nix writes, signed by its key, with references inside the cache, and the same every time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSyntheticCache, syntheticBasename } from '../../bench/synthetic-cache.js';
import { formatNarInfo, parseNarInfo, renderNarInfo, verifyNarInfo } from '../../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'nixcache-synthetic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function narinfos(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith('.narinfo')) out.set(f, readFileSync(join(dir, f), 'utf8'));
  }
  return out;
}

describe('synthetic caches', () => {
  it('writes signed, Nix-canonical narinfos whose references stay inside the cache', async () => {
    const cache = await generateSyntheticCache({ dir: join(root, 'a'), count: 300 });
    expect(readFileSync(join(root, 'a', 'nix-cache-info'), 'utf8')).toMatch(/^StoreDir: \/nix\/store\n/);
    const files = narinfos(cache.dir);
    expect(files.size).toBe(300);
    const hashes = new Set([...files.keys()].map((f) => f.slice(0, 32)));
    expect(hashes.has(syntheticBasename(1, 0).slice(0, 32))).toBe(true);
    let withRefs = 0;
    for (const [file, text] of files) {
      const info = parseNarInfo(text, { source: file });
      expect(renderNarInfo(info)).toBe(text);
      expect(formatNarInfo(info)).toBe(text);
      expect(info.storePath.slice(11, 43)).toBe(file.slice(0, 32));
      expect(verifyNarInfo(info, [cache.publicKey]).signedBy).toEqual(['nixcache-bench-1']);
      for (const r of info.references) expect(hashes.has(r.slice(0, 32))).toBe(true);
      if (info.references.length > 1) withRefs++;
    }
    expect(withRefs).toBeGreaterThan(100);
  });

  it('is deterministic, and the seed changes every path', async () => {
    const [a, b, c] = await Promise.all([
      generateSyntheticCache({ dir: join(root, 'b1'), count: 50 }),
      generateSyntheticCache({ dir: join(root, 'b2'), count: 50 }),
      generateSyntheticCache({ dir: join(root, 'c'), count: 50, seed: 2 }),
    ]);
    expect(narinfos(a.dir)).toEqual(narinfos(b.dir));
    const other = new Set(narinfos(c.dir).keys());
    expect([...narinfos(a.dir).keys()].filter((k) => other.has(k))).toEqual([]);
  });
});
