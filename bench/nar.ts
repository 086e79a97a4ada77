/**
 * NAR benchmarks (nix-formats.md §6): hashPath vs `nix hash path` vs the machine's sha256 limit
 * (`sha256sum`, `openssl dgst` over the files' concatenation), dumpPath vs `nix-store --dump`
 * (both to /dev/null), and peak RSS while a ≥ 1 GiB NAR streams through hashNar. Sides alternate
 * every round; medians and ratios are printed. Nix columns are skipped (with a note) without nix.
 *
 * Run alone: `npx tsx bench/nar.ts` (env NAR_BENCH_ROUNDS, default 5).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hashNar, writeNar } from '../src/nar/index.js';
import { dumpPath, hashPath } from '../src/nar/node/index.js';

type Report = (line: string) => void;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function time(fn: () => unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Deterministic pseudo-random bytes: the AES-128-CTR keystream of zeros. */
function writeGenerated(path: string, size: number): void {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 0));
  const fd = fs.openSync(path, 'w');
  const zero = Buffer.alloc(1 << 20);
  for (let done = 0; done < size; done += zero.length)
    fs.writeSync(fd, cipher.update(zero.subarray(0, Math.min(zero.length, size - done))));
  fs.closeSync(fd);
}

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

interface Side {
  readonly name: string;
  readonly run: () => unknown;
}

async function compare(
  report: Report,
  title: string,
  sides: Side[],
  rounds: number,
  bytes: number,
): Promise<Map<string, number>> {
  const times = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  for (const s of sides) await s.run(); // warm up (page cache, JIT)
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) times.get(s.name)!.push(await time(s.run));
  }
  const med = new Map([...times].map(([k, v]) => [k, median(v)]));
  const ours = med.get(sides[0]!.name)!;
  const oursMin = Math.min(...times.get(sides[0]!.name)!);
  report(`\n${title} (${(bytes / 1e6).toFixed(0)} MB, median of ${rounds}; min in brackets)`);
  for (const [name, ms] of med) {
    const min = Math.min(...times.get(name)!);
    const ratio =
      name === sides[0]!.name
        ? ''
        : `  ours is ${(ms / ours).toFixed(2)}x its speed [${(min / oursMin).toFixed(2)}x]`;
    report(
      `  ${name.padEnd(28)} ${ms.toFixed(0).padStart(6)} ms [${min.toFixed(0).padStart(5)}]  ${((bytes / 1e6 / ms) * 1000).toFixed(0).padStart(5)} MB/s${ratio}`,
    );
  }
  return med;
}

/** Streams a synthetic NAR of `gib` GiB (one big file plus many small ones) through hashNar. */
async function streamThroughHashNar(gib: number): Promise<{ narSize: number; ms: number }> {
  const block = new Uint8Array(1 << 20).fill(0x5a);
  const size = gib * 1024 * block.length;
  async function* big() {
    for (let done = 0; done < size; done += block.length) yield block;
  }
  function* entries() {
    yield { path: '', type: 'directory' as const };
    yield { path: 'big', type: 'regular' as const, size, contents: big() };
    for (let i = 0; i < 20000; i++)
      yield {
        path: `small/${String(i).padStart(6, '0')}`,
        type: 'regular' as const,
        contents: block.subarray(0, i % 300),
      };
  }
  function* withDir() {
    const it = entries();
    yield it.next().value!;
    yield it.next().value!;
    yield { path: 'small', type: 'directory' as const };
    for (const e of it) yield e;
  }
  const t = performance.now();
  const { narSize } = await hashNar(writeNar(withDir()));
  return { narSize, ms: performance.now() - t };
}

/**
 * Runs the NAR benchmarks and reports each line through `report`.
 *
 * @example await benchNar(console.log)
 */
export async function benchNar(
  report: Report = console.log,
  options: { rounds?: number } = {},
): Promise<void> {
  const rounds = options.rounds ?? Number(process.env.NAR_BENCH_ROUNDS ?? 5);
  const nix = has('nix', ['--version']);
  const tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-bench-nar-'));
  try {
    const tree = join(tmp, 'tree');
    fs.mkdirSync(tree);
    execFileSync('cp', ['-r', join(repoRoot, 'node_modules'), join(tree, 'node_modules')]);
    writeGenerated(join(tree, 'generated.bin'), 64 << 20);
    const files = listFiles(tree);
    const concat = join(tmp, 'concat.bin');
    const out = fs.openSync(concat, 'w');
    for (const f of files) fs.writeSync(out, fs.readFileSync(f));
    fs.closeSync(out);
    const narSize = (await hashPath(tree)).narSize;
    report(
      `tree: ${files.length} files, NAR ${(narSize / 1e6).toFixed(0)} MB${nix ? `; ${execFileSync('nix', ['--version']).toString().trim()}` : ''}`,
    );
    if (!nix) report('note: nix is not installed; the nix columns are skipped');

    const hashSides: Side[] = [{ name: 'hashPath (ours)', run: () => hashPath(tree) }];
    if (nix)
      hashSides.push({ name: 'nix hash path', run: () => execFileSync('nix', ['hash', 'path', tree]) });
    if (has('sha256sum', ['--version']))
      hashSides.push({ name: 'sha256sum (concatenation)', run: () => execFileSync('sha256sum', [concat]) });
    if (has('openssl', ['version']))
      hashSides.push({
        name: 'openssl sha256 (concat.)',
        run: () => execFileSync('openssl', ['dgst', '-sha256', concat]),
      });
    await compare(report, 'hash a tree', hashSides, rounds, narSize);

    const devnull = fs.openSync('/dev/null', 'w');
    const dumpSides: Side[] = [
      {
        name: 'dumpPath (ours) > /dev/null',
        run: async () => {
          for await (const chunk of dumpPath(tree)) fs.writeSync(devnull, chunk);
        },
      },
    ];
    if (nix)
      dumpSides.push({
        name: 'nix-store --dump > /dev/null',
        run: () => execFileSync('sh', ['-c', 'nix-store --dump "$0" > /dev/null', tree]),
      });
    await compare(report, 'dump a tree', dumpSides, rounds, narSize);
    fs.closeSync(devnull);

    // Peak RSS in a fresh process, so nothing else counts.
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--rss-child'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
      },
    );
    const res = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as {
      narSize?: number;
      ms?: number;
      baseline?: number;
      peak?: number;
    };
    if (res.peak === undefined) report(`\nhashNar RSS: child failed: ${child.stderr}`);
    else {
      report(
        `\nhashNar over a streamed ${(res.narSize! / 2 ** 30).toFixed(2)} GiB NAR: ${res.ms!.toFixed(0)} ms (${((res.narSize! / 1e6 / res.ms!) * 1000).toFixed(0)} MB/s), ` +
          `peak RSS ${(res.peak / 2 ** 20).toFixed(0)} MiB (process baseline ${(res.baseline! / 2 ** 20).toFixed(0)} MiB)`,
      );
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function rssChild(): Promise<void> {
  const baseline = process.memoryUsage().rss;
  const { narSize, ms } = await streamThroughHashNar(1);
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ narSize, ms, baseline, peak }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--rss-child')) await rssChild();
  else await benchNar();
}
