/**
 * `nixcache path-info -r -S` over an HTTP cache: the closure's narinfos are asked for several at a
 * time as they are discovered (one after the other, a closure of thousands of paths was thousands
 * of round trips in a row), and the records and closure sizes are those of the cache.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpCache, type TestHttpServer } from '../helpers/http-server.js';
import { addPlainPath, runCli } from './helpers.js';

let work: string;
let server: TestHttpServer;
let top: string;
let leaves: string[];
let mid: string;
let inFlight = 0;
let mostInFlight = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-path-info-'));
  const store = join(work, 'store');
  leaves = [];
  for (let i = 0; i < 24; i++)
    leaves.push(await addPlainPath(store, 40 + i, `leaf-${i}`, { 'x.txt': `leaf ${i}\n` }));
  mid = await addPlainPath(store, 70, 'mid', { refs: `${leaves.slice(0, 3).join('\n')}\n` });
  top = await addPlainPath(store, 71, 'top', { refs: `${[mid, ...leaves].join('\n')}\n` });
  const cache = join(work, 'cache');
  const push = await runCli(['push', '--to', `file://${cache}?compression=none`, '--store-dir', store, top]);
  expect(push.code, push.stderr).toBe(0);
  server = await startHttpCache(cache, {
    readOnly: true,
    // Each narinfo answer takes 40 ms: requests sent together overlap here.
    delayMs: (key) => {
      if (!key.endsWith('.narinfo')) return 0;
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      setTimeout(() => inFlight--, 40);
      return 40;
    },
  });
});

afterAll(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

describe('path-info over an HTTP cache', () => {
  it('reads a closure several narinfos at a time, and sums each closure once per path', async () => {
    mostInFlight = 0;
    const r = await runCli(['path-info', '--store', server.url, '-r', '-S', '--json', top]);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as {
      path: string;
      narSize: number;
      closureSize: number;
      references: string[];
    }[];
    expect(rows.map((x) => x.path).sort()).toEqual([top, mid, ...leaves].sort());
    const size = new Map(rows.map((x) => [x.path, x.narSize]));
    const sum = (paths: string[]) => paths.reduce((s, p) => s + size.get(p)!, 0);
    const byPath = new Map(rows.map((x) => [x.path, x]));
    expect(byPath.get(top)!.closureSize).toBe(sum([top, mid, ...leaves]));
    expect(byPath.get(mid)!.closureSize).toBe(sum([mid, ...leaves.slice(0, 3)]));
    expect(byPath.get(leaves[5]!)!.closureSize).toBe(size.get(leaves[5]!));
    // The 25 references of `top` were asked for together, not one after the other.
    expect(mostInFlight).toBeGreaterThanOrEqual(4);
  });
});
