/**
 * publishGraph on random reference graphs (fast-check): every path that can reach a reference
 * cycle fails (the ones on it naming the cycle), every other reachable path is published after
 * its references, and nothing is ever inspected-and-published twice or left hanging.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publishGraph } from '../../src/cache/graph.js';
import type { NarInfo } from '../../src/narinfo/types.js';
import { openStore } from '../../src/store/index.js';
import { fakeHashPart } from '../cli/helpers.js';

let work: string;
let run = 0;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-graph-prop-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const name = (i: number) => `${fakeHashPart(i + 1)}-node${i}`;

/** Nodes that can reach a cycle of two or more nodes (self-loops are legal). */
function doomed(edges: readonly (readonly number[])[]): Set<number> {
  const reach = (from: number): Set<number> => {
    const seen = new Set<number>();
    const stack = edges[from]!.filter((t) => t !== from);
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(...edges[n]!.filter((t) => t !== n));
    }
    return seen;
  };
  const reaches = edges.map((_, i) => reach(i));
  const onCycle = new Set(edges.map((_, i) => i).filter((i) => reaches[i]!.has(i)));
  return new Set(
    edges.map((_, i) => i).filter((i) => onCycle.has(i) || [...reaches[i]!].some((n) => onCycle.has(n))),
  );
}

it('fails exactly the paths that reach a cycle and publishes the rest references first', async () => {
  const graph = fc.integer({ min: 1, max: 7 }).chain((n) =>
    fc.record({
      edges: fc.array(fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: 3 }), {
        minLength: n,
        maxLength: n,
      }),
      roots: fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { minLength: 1, maxLength: n }),
    }),
  );
  await fc.assert(
    fc.asyncProperty(graph, async ({ edges, roots }) => {
      const store = await openStore(`file://${join(work, `cache-${run++}`)}`);
      const published: string[] = [];
      const index = (base: string) => Number(base.slice(base.lastIndexOf('node') + 4));
      const result = await publishGraph(
        store,
        roots.map(name),
        {
          inspect: async (sp) => ({ references: edges[index(sp.name)]!.map(name).sort(), data: undefined }),
          publish: async (sp, inspected): Promise<NarInfo> => {
            published.push(sp.name);
            return {
              storePath: `/nix/store/${sp.hash}-${sp.name}`,
              url: `nar/${sp.hash}.nar`,
              compression: 'none',
              narHash: { algorithm: 'sha256', digest: new Uint8Array(32) },
              narSize: 8,
              references: [...inspected.references],
              sigs: [],
            };
          },
        },
        { parallelism: 3 },
      );
      // Reachable from the roots.
      const reachable = new Set<number>();
      const stack = [...roots];
      while (stack.length) {
        const n = stack.pop()!;
        if (reachable.has(n)) continue;
        reachable.add(n);
        stack.push(...edges[n]!);
      }
      const bad = doomed(edges);
      const expectPushed = [...reachable].filter((n) => !bad.has(n));
      const pushed = result.pushed.map((p) => index(p));
      expect(pushed.toSorted()).toEqual(expectPushed.toSorted());
      expect(result.failed.map((f) => index(f.path)).toSorted()).toEqual(
        [...reachable].filter((n) => bad.has(n)).toSorted(),
      );
      expect(published.toSorted()).toEqual(expectPushed.map((n) => `node${n}`).toSorted());
      for (const [i, n] of pushed.entries()) {
        for (const r of edges[n]!) if (r !== n) expect(pushed.indexOf(r)).toBeLessThan(i);
      }
      for (const f of result.failed)
        expect(f.error.message).toMatch(/reference cycle|could not be published/);
    }),
    { numRuns: 60 },
  );
});
