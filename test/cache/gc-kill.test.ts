/**
 * gc killed at 20 random points (issue 12): `nixcache gc` runs as a subprocess on a copy of a
 * file:// cache (pins, old unpinned pushes, shared NARs, a long reference chain) and gets SIGKILL
 * when its k-th progress line arrives (k drawn from a seeded generator over the lines of a full
 * run, so kills land in every phase). Afterwards no narinfo lacks its NAR or a reference, and the
 * next gc finishes the job: the cache ends exactly as after an uninterrupted gc.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/cache/gc.js';
import { generateSecretKey } from '../../src/signing/keys.js';
import { spawnCli } from '../cli/helpers.js';
import { checkInvariant, fileStore } from '../reliability/helpers.js';
import { addPath, ageFiles, DAY, makeGcScenario, push, pushScenario, snapshot } from './gc-helpers.js';

const KILLS = 20;
let tmp: string;
let template: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixcache-gc-kill-'));
  const storeDir = join(tmp, 'store');
  mkdirSync(storeDir);
  template = join(tmp, 'template');
  const store = fileStore(template);
  const key = generateSecretKey('gc-kill-1');
  await pushScenario(store, storeDir, await makeGcScenario(storeDir), key);
  // A chain of 30 unpinned paths: 30 levels of referrers-first deletion.
  let prev = await addPath(storeDir, { name: 'chain-0' });
  for (let i = 1; i < 30; i++) prev = await addPath(storeDir, { name: `chain-${i}`, refs: [prev] });
  await push(store, storeDir, [prev], key);
  ageFiles(template, 10 * DAY);
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function copyOf(name: string): string {
  const dir = join(tmp, name);
  cpSync(template, dir, { recursive: true, preserveTimestamps: true });
  return dir;
}

/** Runs `nixcache gc -v`; kills it with SIGKILL at its `killAt`-th stderr line. Returns the lines seen. */
function gcProcess(
  dir: string,
  killAt?: number,
): Promise<{ lines: number; signal: string | null; code: number | null }> {
  const child = spawnCli(['gc', '--store', `file://${dir}`, '--batch-size', '3', '-v']);
  let lines = 0;
  let buffered = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines += parts.length;
    if (killAt !== undefined && lines >= killAt) child.kill('SIGKILL');
  });
  child.stdout.resume();
  child.stdin.end();
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ lines, signal, code })));
}

/** A small seeded generator, so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('gc killed at random points', () => {
  it(`leaves a consistent cache after SIGKILL at ${KILLS} points, and the next gc finishes the job`, async () => {
    const full = copyOf('full');
    const reference = await gcProcess(full);
    expect(reference.code).toBe(0);
    const expected = [...(await snapshot(fileStore(full))).keys()].sort();
    expect(reference.lines).toBeGreaterThan(40);
    const seed = Number(process.env.GC_KILL_SEED ?? Date.now() % 100_000);
    const random = seeded(seed);
    const killed: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const killAt = 1 + Math.floor(random() * (reference.lines - 1));
      const dir = copyOf(`kill-${i}`);
      const r = await gcProcess(dir, killAt);
      if (r.signal === 'SIGKILL') killed.push(killAt);
      const store = fileStore(dir);
      const report = await checkInvariant(store);
      expect(report.problems, `seed ${seed}, kill at line ${killAt}`).toEqual([]);
      const finish = await collectGarbage(store);
      expect(finish.skipped).toEqual([]);
      expect([...(await snapshot(store)).keys()].sort(), `seed ${seed}, kill at line ${killAt}`).toEqual(
        expected,
      );
      rmSync(dir, { recursive: true, force: true });
    }
    // Nearly every run was really killed midway (one may finish before its kill lands).
    expect(killed.length).toBeGreaterThanOrEqual(KILLS - 2);
  }, 240_000);
});
