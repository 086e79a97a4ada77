/**
 * The scale group's copy (issue 11 item 8): `copy --all` of a synthetic cache with real NARs
 * (small regular files, uncompressed) from one file:// cache into a fresh one, against
 * `nix copy --from … --to …` given every store path of the cache.
 *
 * Two things Nix 2.8 does differently, measured here as found:
 * - `nix copy --all --from file://…` fails ("the reference … is not valid": it does not order
 *   the paths by their references), so Nix gets the paths as arguments, which it does order.
 * - Nix does not check signatures when the target is a binary cache: it copies paths no trusted
 *   key signed. Ours checks each (`-k`), and runs once more with `--no-check-sigs` for the same
 *   work as Nix.
 *
 * Then the same copy (at most 2,000 paths: s3rver is slower per object) into s3rver, against the
 * plain AWS SDK putting the objects such a copy writes, two at once as our copy's default.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { bundleChild, s3rverChildEnv } from './bench-child.js';
import { type ChildRun, measure, runSides } from './child-run.js';
import { hasNix, record, section } from './harness.js';
import { type MoreScaleOptions, measureNix, recordTriple } from './scale-more.js';
import { generateSyntheticCache } from './synthetic-cache.js';

/** `copy --all` (with and without signature checks) against `nix copy` of every path. */
export async function benchScaleCopy(o: MoreScaleOptions): Promise<void> {
  section(`scale: copy of ${o.count} synthetic paths with NARs, file:// to a fresh file:// cache`);
  const source = join(o.tmp, `copy-source-${o.count}`);
  try {
    const cache = await generateSyntheticCache({ dir: source, count: o.count, seed: 9, nars: true });
    const paths = fs
      .readdirSync(source)
      .filter((n) => n.endsWith('.narinfo'))
      .map((n) => /^StorePath: (.*)$/m.exec(fs.readFileSync(join(source, n), 'utf8'))![1]!);
    let targets = 0;
    /** A fresh target per run, checked to hold every path afterwards, then removed. */
    const intoFresh = (run: (target: string) => ChildRun): (() => ChildRun) => {
      return () => {
        const dir = join(o.tmp, `copy-target-${targets++}`);
        try {
          const result = run(`file://${dir}?compression=none`);
          const copied = fs.readdirSync(dir).filter((n) => n.endsWith('.narinfo')).length;
          if (copied !== o.count) throw new Error(`the run copied ${copied} of ${o.count} paths`);
          return result;
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      };
    };
    const ours = (extra: readonly string[]) =>
      intoFresh((target) =>
        measure(
          process.execPath,
          [o.cli, 'copy', '--from', `file://${source}`, '--to', target, '--all', ...extra],
          { ...process.env, NO_COLOR: '1' },
          o.withTime,
        ),
      );
    const stats = runSides(
      {
        ours: ours(['-k', cache.publicKey]),
        unchecked: ours(['--no-check-sigs']),
        nix: hasNix
          ? intoFresh((target) =>
              measureNix(o, ['copy', '--from', `file://${source}`, '--to', target, ...paths]),
            )
          : undefined,
      },
      o.rounds,
    );
    recordTriple(stats, {
      what: 'copy --all -k (signatures checked)',
      count: o.count,
      anchorSide: 'nix',
      anchorName: 'nix copy (every path named)',
      note: hasNix
        ? 'Nix checks no signature into a binary cache; whole processes, wall'
        : 'nix not installed: Nix column skipped',
    });
    const unchecked = stats.seconds('unchecked');
    if (unchecked !== undefined) {
      const nix = stats.seconds('nix');
      record({
        group: 'scale',
        name: `copy --all --no-check-sigs, ${o.count} paths`,
        unit: 'k/s',
        ours: o.count / unchecked / 1000,
        anchors: { 'nix copy (every path named)': nix && o.count / nix / 1000 },
        higherIsBetter: true,
        note: `the same work as Nix; CPU ${stats.cpu('unchecked')?.toFixed(2) ?? '?'} s vs ${stats.cpu('nix')?.toFixed(2) ?? '?'} s`,
      });
    }
    await copyToS3rver(o, cache.publicKey, Math.min(o.count, 2000));
  } finally {
    fs.rmSync(source, { recursive: true, force: true });
  }
}

/**
 * `copy --all` of a `count`-path synthetic cache into s3rver (a fresh bucket per run) against the
 * plain SDK putting every object of the same copy made to file:// beforehand.
 */
async function copyToS3rver(o: MoreScaleOptions, publicKey: string, count: number): Promise<void> {
  // A smaller synthetic cache (the same seed and key: its paths are the big one's first ones).
  const small = join(o.tmp, `copy-s3-source-${count}`);
  const cache = await generateSyntheticCache({ dir: small, count, seed: 9, nars: true });
  if (cache.publicKey !== publicKey) throw new Error('the synthetic caches were signed by different keys');
  const reference = join(o.tmp, 'copy-s3-reference');
  const { startS3rver } = await import('../test/helpers/s3rver.js');
  const env = { ...s3rverChildEnv(), NO_COLOR: '1' };
  const buckets = Array.from({ length: o.rounds }, (_, r) => `copy-ours-${r}`);
  const s3 = await startS3rver({ buckets });
  try {
    section(`scale: copy of ${count} synthetic paths with NARs, file:// to s3rver`);
    const copyTo = (target: string, withTime: boolean) =>
      measure(
        process.execPath,
        [o.cli, 'copy', '--from', `file://${small}`, '--to', target, '--all', '-k', publicKey],
        env,
        withTime,
      );
    copyTo(`file://${reference}?compression=none`, false);
    const sdkChild = await bundleChild('sdk-put-child');
    let round = 0;
    let sdkRound = 0;
    const stats = runSides(
      {
        ours: () =>
          copyTo(
            `s3://${buckets[round++]}?endpoint=${s3.endpoint}&region=us-east-1&compression=none`,
            o.withTime,
          ),
        sdk: () =>
          measure(
            process.execPath,
            [sdkChild, s3.endpoint, `copy-sdk-${sdkRound++}`, reference, '2'],
            env,
            o.withTime,
          ),
      },
      o.rounds,
    );
    recordTriple(stats, {
      what: 'copy --all -k to s3rver',
      count,
      anchorSide: 'sdk',
      anchorName: 'plain SDK putting the same objects',
      note: 'the SDK only uploads ready files; ours also reads, verifies, hashes and asks what the target has',
    });
  } finally {
    await s3.stop();
    fs.rmSync(small, { recursive: true, force: true });
    fs.rmSync(reference, { recursive: true, force: true });
  }
}
