/**
 * Compression benchmark: nixcache's streaming codecs against the reference CLIs on a real,
 * compressible input (a tar of this repository's node_modules). Decompression MB/s (uncompressed
 * bytes per second) for xz, zstd, bzip2, gzip and br; compression MB/s for xz (level 6, one and two
 * threads) and zstd (level 3). Sides alternate, each cell is the median of its rounds.
 *
 * Run: `npx tsx bench/compression.ts [sizeMiB]`, or call `runCompressionBench()` from a runner.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compress, decompress } from '../src/compression/index.js';
import { zstdBackend } from '../src/compression/zstd.js';

/** One measured line: ours beside the CLI, in MB/s of uncompressed data. */
export interface CompressionBenchRow {
  readonly name: string;
  readonly inputMB: number;
  readonly oursMBps: number;
  readonly cli: string | undefined;
  readonly cliMBps: number | undefined;
  /** ours / cli */
  readonly ratio: number | undefined;
}

/** Options of {@link runCompressionBench}. */
export interface CompressionBenchOptions {
  /** Size of the main input in MiB (default 96). */
  readonly sizeMiB?: number;
  /** Rounds per side (default 3). */
  readonly rounds?: number;
  /** Print a table as rows complete (default true). */
  readonly print?: boolean;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function* chunks(bytes: Uint8Array, size = 256 * 1024): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of it) n += c.length;
  return n;
}

function timeCli(command: string): number {
  const t = performance.now();
  const r = spawnSync('sh', ['-c', command], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${command} failed`);
  return (performance.now() - t) / 1000;
}

async function timeOurs(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

function makeInput(size: number): Uint8Array {
  const tar = execFileSync(
    'sh',
    ['-c', `tar cf - -C '${repoRoot}' node_modules 2>/dev/null | head -c ${size}`],
    {
      maxBuffer: size + 1024,
    },
  );
  if (tar.length < size) throw new Error(`only ${tar.length} bytes of node_modules to tar`);
  return tar;
}

/**
 * Runs the benchmark and returns its rows.
 *
 * @throws Error when a CLI that the comparison needs (xz, zstd, bzip2, gzip, tar) is missing.
 * @example
 * const rows = await runCompressionBench({ sizeMiB: 64, rounds: 3 });
 */
export async function runCompressionBench(
  options: CompressionBenchOptions = {},
): Promise<CompressionBenchRow[]> {
  const size = (options.sizeMiB ?? 96) * 2 ** 20;
  const rounds = options.rounds ?? 3;
  const print = options.print ?? true;
  const rows: CompressionBenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'nixcache-bench-compression-'));
  const show = (row: CompressionBenchRow): void => {
    rows.push(row);
    if (!print) return;
    const cli = row.cliMBps === undefined ? '' : `${row.cli} ${row.cliMBps.toFixed(1)} MB/s`;
    const ratio = row.ratio === undefined ? '' : `  ratio ${row.ratio.toFixed(2)}x`;
    console.log(
      `${row.name.padEnd(34)} ${row.inputMB.toFixed(0).padStart(4)} MB  ours ${row.oursMBps.toFixed(1).padStart(6)} MB/s  ${cli}${ratio}`,
    );
  };
  try {
    const input = makeInput(size);
    const raw = join(dir, 'input.tar');
    writeFileSync(raw, input);
    if (print)
      console.log(
        `input: ${(size / 1e6).toFixed(0)} MB tar of node_modules; zstd backends: ${JSON.stringify(await zstdBackend())}; node ${process.version}`,
      );

    const decodeCases = [
      { method: 'xz', cli: 'xz', make: 'xz -6 -T1 -c', ext: 'xz', bytes: size },
      { method: 'zstd', cli: 'zstd', make: 'zstd -3 -c', ext: 'zst', bytes: size },
      { method: 'gzip', cli: 'gzip', make: 'gzip -6 -c', ext: 'gz', bytes: size },
      { method: 'bzip2', cli: 'bzip2', make: 'bzip2 -9 -c', ext: 'bz2', bytes: Math.min(size, 24 * 2 ** 20) },
    ] as const;
    for (const c of decodeCases) {
      const src = join(dir, `in-${c.ext}.tar`);
      writeFileSync(src, input.subarray(0, c.bytes));
      const file = `${src}.${c.ext}`;
      execFileSync('sh', ['-c', `${c.make} '${src}' > '${file}'`]);
      const packed = readFileSync(file);
      const ours: number[] = [];
      const cli: number[] = [];
      for (let r = 0; r < rounds; r++) {
        cli.push(timeCli(`${c.cli} -dc '${file}' > /dev/null`));
        ours.push(await timeOurs(() => drain(decompress(c.method, chunks(packed)))));
      }
      const mb = c.bytes / 1e6;
      show({
        name: `decompress ${c.method}`,
        inputMB: mb,
        oursMBps: mb / median(ours),
        cli: `${c.cli} -d`,
        cliMBps: mb / median(cli),
        ratio: median(cli) / median(ours),
      });
    }
    {
      const packed = (await import('node:zlib')).brotliCompressSync(input, { params: { 1: 9 } });
      const ours: number[] = [];
      for (let r = 0; r < rounds; r++)
        ours.push(await timeOurs(() => drain(decompress('br', chunks(packed)))));
      show({
        name: 'decompress br (q9; no CLI)',
        inputMB: size / 1e6,
        oursMBps: size / 1e6 / median(ours),
        cli: undefined,
        cliMBps: undefined,
        ratio: undefined,
      });
    }

    const xzBytes = Math.min(size, 16 * 2 ** 20);
    const xzIn = join(dir, 'xz-in.tar');
    writeFileSync(xzIn, input.subarray(0, xzBytes));
    const compressCases = [
      {
        name: 'compress xz -6 (1 thread)',
        method: 'xz',
        level: 6,
        threads: 1,
        cli: `xz -6 -T1 -c '${xzIn}' > /dev/null`,
        bytes: xzBytes,
        r: 2,
      },
      {
        name: 'compress xz -6 (2 threads)',
        method: 'xz',
        level: 6,
        threads: 2,
        cli: `xz -6 -T2 -c '${xzIn}' > /dev/null`,
        bytes: xzBytes,
        r: 2,
      },
      {
        name: 'compress zstd -3',
        method: 'zstd',
        level: 3,
        threads: 1,
        cli: `zstd -3 -c '${raw}' > /dev/null`,
        bytes: size,
        r: rounds,
      },
    ] as const;
    for (const c of compressCases) {
      const data = input.subarray(0, c.bytes);
      const ours: number[] = [];
      const cli: number[] = [];
      for (let r = 0; r < c.r; r++) {
        cli.push(timeCli(c.cli));
        ours.push(
          await timeOurs(() =>
            drain(compress(c.method, chunks(data), { level: c.level, threads: c.threads })),
          ),
        );
      }
      const mb = c.bytes / 1e6;
      show({
        name: c.name,
        inputMB: mb,
        oursMBps: mb / median(ours),
        cli: c.cli.split(' -c')[0],
        cliMBps: mb / median(cli),
        ratio: median(cli) / median(ours),
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const sizeMiB = process.argv[2] ? Number(process.argv[2]) : undefined;
  await runCompressionBench({ sizeMiB });
}
