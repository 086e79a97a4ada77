/**
 * Reference cycles and impossible references (issue 10 item 7): push and copy name the cycle,
 * finish, and write nothing for the paths on it — no NAR, no narinfo. A path's reference to
 * itself (same basename) stays legal.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GraphSteps, publishGraph } from '../../src/cache/graph.js';
import { copyPaths, pushPaths } from '../../src/cache/index.js';
import { SharedRun } from '../../src/cache/shared-run.js';
import type { NixcacheError } from '../../src/errors.js';
import { openStore } from '../../src/store/index.js';
import { addPlainPath, runCli } from '../cli/helpers.js';
import { hashPartOf, readNarInfoFile, writeNarInfoFile } from './helpers.js';

let work: string;
let storeDir: string;
let a: string;
let b: string;
let c: string;
let fresh = 0;
const base = (p: string) => p.slice('/nix/store/'.length);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-graph-'));
  storeDir = join(work, 'store');
  await mkdir(storeDir);
  a = await addPlainPath(storeDir, 1, 'cycle-a', { 'a.txt': 'a\n' });
  b = await addPlainPath(storeDir, 2, 'cycle-b', { 'b.txt': 'b\n' });
  c = await addPlainPath(storeDir, 3, 'above-cycle', { 'c.txt': 'c\n' });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A source cache holding a, b and c (no references), whose narinfos `refs` then rewrites. */
async function forgedSource(refs: Record<string, string[]>): Promise<{ dir: string; url: string }> {
  const dir = join(work, `source-${fresh++}`);
  const url = `file://${dir}?compression=none`;
  const pushed = await pushPaths(await openStore(url), [a, b, c], { storeDir });
  expect(pushed.failed).toEqual([]);
  for (const [path, references] of Object.entries(refs)) {
    const info = await readNarInfoFile(dir, path);
    await writeNarInfoFile(dir, { ...info, references: references.map(base).sort() });
  }
  return { dir, url };
}

/** Nothing of `paths` in the cache at `dir`: no narinfo, and no NAR at all. */
async function expectNothingWritten(dir: string, paths: readonly string[]) {
  for (const p of paths) expect(existsSync(join(dir, `${hashPartOf(p)}.narinfo`)), p).toBe(false);
  expect(existsSync(join(dir, 'nar')) ? await readdir(join(dir, 'nar')) : []).toEqual([]);
}

const errorOf = (r: { failed: readonly { path: string; error: Error }[] }, p: string) =>
  r.failed.find((f) => f.path === p)?.error as NixcacheError | undefined;

describe('copy', () => {
  it('names an A → B → A cycle, fails both and whatever refers to them, and writes nothing', {
    timeout: 20_000,
  }, async () => {
    const { url } = await forgedSource({ [a]: [b], [b]: [a], [c]: [a] });
    const dir = join(work, `target-${fresh++}`);
    const result = await copyPaths(await openStore(url), await openStore(`file://${dir}`), [c]);
    expect(result.pushed).toEqual([]);
    for (const p of [a, b]) {
      const e = errorOf(result, p)!;
      expect(e.code).toBe('INTEGRITY');
      expect(e.message).toMatch(/reference cycle/);
      expect(e.message).toContain(a);
      expect(e.message).toContain(b);
    }
    expect(errorOf(result, c)!.message).toMatch(/its reference .* could not be published/);
    await expectNothingWritten(dir, [a, b, c]);
  });

  it('refuses a narinfo that refers to its own hash part under another name', {
    timeout: 20_000,
  }, async () => {
    const alias = `/nix/store/${hashPartOf(a)}-another-name`;
    const { url } = await forgedSource({ [a]: [alias] });
    const dir = join(work, `target-${fresh++}`);
    const result = await copyPaths(await openStore(url), await openStore(`file://${dir}`), [a]);
    const e = errorOf(result, a)!;
    expect(e.code).toBe('INTEGRITY');
    expect(e.message).toMatch(/own hash part under another name/);
    await expectNothingWritten(dir, [a]);
  });

  it('copies a path that refers to itself by its own name', async () => {
    const { url } = await forgedSource({ [a]: [a, b] });
    const to = await openStore(`file://${join(work, `target-${fresh++}`)}`);
    const result = await copyPaths(await openStore(url), to, [a]);
    expect(result.failed).toEqual([]);
    expect(result.pushed).toEqual([b, a]);
    expect((await to.getNarInfo(a))!.references).toEqual([base(a), base(b)].sort());
  });
});

describe('push --metadata', () => {
  it('names a cycle in the metadata and uploads no NAR', { timeout: 20_000 }, async () => {
    const dir = join(work, `push-${fresh++}`);
    const result = await pushPaths(await openStore(`file://${dir}`), [a], {
      storeDir,
      metadata: { [a]: { references: [b] }, [b]: { references: [a] } },
    });
    expect(result.pushed).toEqual([]);
    expect(errorOf(result, a)!.message).toMatch(/reference cycle/);
    expect(errorOf(result, b)!.message).toMatch(/reference cycle/);
    await expectNothingWritten(dir, [a, b]);
  });
});

describe('without the closure', () => {
  it('publishes a root that refers to another root after it, and refuses two names for one hash', async () => {
    const dir = join(work, `push-${fresh++}`);
    const store = await openStore(`file://${dir}`);
    const metadata = { [a]: { references: [b] }, [b]: { references: [] } };
    const result = await pushPaths(store, [a, b], { storeDir, metadata, closure: false });
    expect(result.failed).toEqual([]);
    expect(result.pushed).toEqual([b, a]);
    const alias = `/nix/store/${hashPartOf(c)}-another-name`;
    await expect(pushPaths(store, [c, alias], { storeDir })).rejects.toMatchObject({
      code: 'BAD_STORE_PATH',
    });
  });
});

describe('the CLI', () => {
  it('copy and push exit 1 naming the cycle (not 13 with no output)', { timeout: 60_000 }, async () => {
    const { url } = await forgedSource({ [a]: [b], [b]: [a] });
    const target = join(work, `cli-target-${fresh++}`);
    const copy = await runCli(['copy', '--from', url, '--to', `file://${target}`, a]);
    expect(copy.code).toBe(1);
    expect(copy.stderr).toMatch(/reference cycle/);
    await expectNothingWritten(target, [a, b]);

    const meta = join(work, 'cycle.json');
    await writeFile(
      meta,
      JSON.stringify([
        { path: a, references: [b] },
        { path: b, references: [a] },
      ]),
    );
    const pushDir = join(work, `cli-push-${fresh++}`);
    const push = await runCli([
      'push',
      '--to',
      `file://${pushDir}`,
      '--store-dir',
      storeDir,
      '--metadata',
      meta,
      '--json',
      a,
    ]);
    expect(push.code).toBe(1);
    const out = JSON.parse(push.stdout);
    expect(out.pushed).toEqual([]);
    expect(out.failed.map((f: { message: string }) => f.message).join('\n')).toMatch(/reference cycle/);
    await expectNothingWritten(pushDir, [a, b]);
  });
});

describe('graphs of one run (copy --all)', () => {
  it('fail a cycle whose two sides two graphs claimed before either saw the other, instead of waiting forever', async () => {
    const { url } = await forgedSource({ [a]: [b], [b]: [a] });
    const from = await openStore(url);
    const target = join(work, `shared-target-${fresh++}`);
    const to = await openStore(`file://${target}`);
    const run = new SharedRun();
    // Each graph's inspect waits until both have started theirs: by then graph 1 has claimed a
    // and graph 2 has claimed b, so each finds the other side claimed and waits for it.
    let started = 0;
    let release!: () => void;
    const bothStarted = new Promise<void>((resolve) => {
      release = resolve;
    });
    const steps: GraphSteps<undefined> = {
      async inspect(sp) {
        if (++started === 2) release();
        await bothStarted;
        const info = (await from.getNarInfo(sp.hash))!;
        return { references: info.references, data: undefined };
      },
      async publish(sp) {
        return (await from.getNarInfo(sp.hash))!;
      },
    };
    const [one, two] = await Promise.all([
      publishGraph(to, [a], steps, { shared: run }),
      publishGraph(to, [b], steps, { shared: run }),
    ]);
    expect(started).toBe(2);
    expect(one.failed.map((f) => f.path)).toContain(a);
    expect(two.failed.map((f) => f.path)).toContain(b);
    const messages = [...one.failed, ...two.failed].map((f) => f.error.message).join('\n');
    expect(messages).toMatch(/reference cycle/);
    await expectNothingWritten(target, [a, b]);
    expect(run.claims.size).toBe(0);
  }, 30_000);
});
