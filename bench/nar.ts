/**
 * NAR benchmarks (nix-formats.md §6): `hashPath` vs `nix hash path` vs the machine's sha256 limit
 * (`sha256sum` over the concatenation of the tree's files), and `dumpPath` vs `nix-store --dump`
 * (both to /dev/null; ours also with `reuseChunks`, which that consumer allows), on the runner's
 * ≥ 200 MB tree. Sides alternate every round; medians and
 * ratios go through the harness. Nix columns are skipped (with a note) without nix.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { dumpPath, hashPath } from '../src/nar/node/index.js';
import { alternate, hasCommand, hasNix, record, run, section } from './harness.js';

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(join(p, n));
    else if (st.isFile()) out.push(p);
  };
  walk(root);
  return out;
}

/**
 * Runs the NAR benchmarks on `tree`.
 *
 * @example await benchNar('/tmp/tree', '/tmp', 3)
 */
export async function benchNar(tree: string, tmp: string, rounds: number): Promise<void> {
  // A round takes a fraction of a second and the sides differ by a few percent: at least 7
  // rounds, so that one disturbed round does not move the medians (3 rounds gave 0.97-1.00x
  // for hashPath from run to run, 8 rounds in one process 1.05-1.2x on the same parts).
  const narRounds = Math.max(rounds, 7);
  const files = listFiles(tree);
  const concat = join(tmp, 'concat.bin');
  const out = fs.openSync(concat, 'w');
  for (const f of files) fs.writeSync(out, fs.readFileSync(f));
  fs.closeSync(out);
  const { narSize } = await hashPath(tree);
  const mb = narSize / 1e6;
  section(`NAR: hash and dump a tree (${files.length} files, NAR ${mb.toFixed(0)} MB)`);
  const note = hasNix ? undefined : 'nix not installed: Nix column skipped';

  const hash = await alternate(
    {
      ours: () => hashPath(tree),
      nix: hasNix ? () => run('nix', ['hash', 'path', tree]) : undefined,
      sha256sum: hasCommand('sha256sum') ? () => run('sha256sum', [concat]) : undefined,
    },
    narRounds,
    { warmup: true },
  );
  record({
    group: 'nar',
    name: 'hashPath',
    unit: 'MB/s',
    ours: mb / hash.ours!,
    anchors: {
      'nix hash path': hash.nix && mb / hash.nix,
      'sha256sum (files concatenated)': hash.sha256sum && mb / hash.sha256sum,
    },
    higherIsBetter: true,
    ...(note && { note }),
  });

  const devnull = fs.openSync('/dev/null', 'w');
  const dump = await alternate(
    {
      ours: async () => {
        for await (const chunk of dumpPath(tree)) fs.writeSync(devnull, chunk);
      },
      // The same consumer (a synchronous write) is done with each chunk when it asks for the next.
      reuse: async () => {
        for await (const chunk of dumpPath(tree, { reuseChunks: true })) fs.writeSync(devnull, chunk);
      },
      nix: hasNix ? () => execFileSync('sh', ['-c', 'nix-store --dump "$0" > /dev/null', tree]) : undefined,
    },
    narRounds,
    { warmup: true },
  );
  fs.closeSync(devnull);
  fs.rmSync(concat, { force: true });
  record({
    group: 'nar',
    name: 'dumpPath > /dev/null',
    unit: 'MB/s',
    ours: mb / dump.ours!,
    anchors: { 'nix-store --dump > /dev/null': dump.nix && mb / dump.nix },
    higherIsBetter: true,
    ...(note && { note }),
  });
  record({
    group: 'nar',
    name: 'dumpPath { reuseChunks } > /dev/null',
    unit: 'MB/s',
    ours: mb / dump.reuse!,
    anchors: { 'nix-store --dump > /dev/null': dump.nix && mb / dump.nix },
    higherIsBetter: true,
    ...(note && { note }),
  });
}
