/**
 * More of the scale group (issue 11 item 8), beside `verify` in bench/scale.ts: `sign --all` of a
 * synthetic cache on file:// against `nix store sign --all`, each run on a fresh copy of the cache
 * (both add one signature to every narinfo), and the helpers the other scale files share. Whole
 * processes, alternating, with CPU time and peak RSS (the s3rver rows are in scale-s3.ts).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { formatSecretKey, generateSecretKey } from '../src/signing/keys.js';
import { nixEnv } from './cache.js';
import { type ChildRun, measure, runSides, type SideStats } from './child-run.js';
import { hasNix, record, section } from './harness.js';
import { generateSyntheticCache } from './synthetic-cache.js';

export interface MoreScaleOptions {
  readonly tmp: string;
  readonly rounds: number;
  /** The bundled CLI (bench/scale.ts `buildCli`). */
  readonly cli: string;
  readonly withTime: boolean;
  /** Narinfos in the cache. */
  readonly count: number;
}

/** Records wall rate, CPU and peak RSS of `ours` against one anchor (the scale group's rows). */
export function recordTriple(
  stats: SideStats,
  o: { what: string; count: number; anchorSide: string; anchorName: string; note: string },
): void {
  const ours = stats.seconds('ours');
  if (ours === undefined) return;
  const anchor = stats.seconds(o.anchorSide);
  record({
    group: 'scale',
    name: `${o.what}, ${o.count} narinfos`,
    unit: 'k/s',
    ours: o.count / ours / 1000,
    anchors: { [o.anchorName]: anchor && o.count / anchor / 1000 },
    higherIsBetter: true,
    note: `${o.note}; ours ${ours.toFixed(2)} s${anchor === undefined ? '' : `, anchor ${anchor.toFixed(2)} s`}`,
  });
  if (stats.cpu('ours') !== undefined) {
    record({
      group: 'scale',
      name: `  CPU time (user+sys)`,
      unit: 's',
      ours: stats.cpu('ours')!,
      anchors: { [o.anchorName]: stats.cpu(o.anchorSide) },
      higherIsBetter: false,
    });
  }
  if (stats.rss('ours') !== undefined) {
    record({
      group: 'scale',
      name: `  peak RSS`,
      unit: 'MB',
      ours: stats.rss('ours')!,
      anchors: { [o.anchorName]: stats.rss(o.anchorSide) },
      higherIsBetter: false,
    });
  }
}

/** Runs `nix ARGS` as the scale group's anchor, with a fresh (empty) home for its caches. */
export function measureNix(o: Pick<MoreScaleOptions, 'tmp' | 'withTime'>, args: readonly string[]): ChildRun {
  const home = fs.mkdtempSync(join(o.tmp, 'nix-home-'));
  try {
    return measure('nix', args, nixEnv(home), o.withTime);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** `sign --all` against `nix store sign --all`, each on a fresh copy of one synthetic cache. */
export async function benchScaleSign(o: MoreScaleOptions): Promise<void> {
  section(
    `scale: sign --all of ${o.count} synthetic narinfos on file:// (a fresh copy of the cache per run)`,
  );
  const source = join(o.tmp, `sign-source-${o.count}`);
  const keyFile = join(o.tmp, 'sign-scale.secret');
  try {
    await generateSyntheticCache({ dir: source, count: o.count, seed: 7 });
    const key = generateSecretKey('bench-sign-1');
    fs.writeFileSync(keyFile, formatSecretKey(key), { mode: 0o600 });
    let copies = 0;
    /** A fresh copy of the cache (made before the clock starts), removed after the run. */
    const onCopy = (run: (store: string) => ChildRun): (() => ChildRun) => {
      return () => {
        const dir = join(o.tmp, `sign-copy-${copies++}`);
        fs.cpSync(source, dir, { recursive: true });
        try {
          const result = run(`file://${dir}`);
          // Both must have signed: a narinfo of the copy carries the new key's signature.
          const first = fs.readdirSync(dir).find((n) => n.endsWith('.narinfo'))!;
          if (!fs.readFileSync(join(dir, first), 'utf8').includes('Sig: bench-sign-1:'))
            throw new Error('the run did not sign');
          return result;
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      };
    };
    const stats = runSides(
      {
        ours: onCopy((store) =>
          measure(
            process.execPath,
            [o.cli, 'sign', '--store', store, '--key-file', keyFile, '--all'],
            { ...process.env, NO_COLOR: '1' },
            o.withTime,
          ),
        ),
        nix: hasNix
          ? onCopy((store) =>
              measureNix(o, ['store', 'sign', '--store', store, '--key-file', keyFile, '--all']),
            )
          : undefined,
      },
      o.rounds,
    );
    recordTriple(stats, {
      what: 'sign --all',
      count: o.count,
      anchorSide: 'nix',
      anchorName: 'nix store sign --all',
      note: hasNix ? 'whole processes, wall' : 'nix not installed: Nix column skipped',
    });
  } finally {
    fs.rmSync(source, { recursive: true, force: true });
    fs.rmSync(keyFile, { force: true });
  }
}
