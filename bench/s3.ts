/**
 * S3 upload benchmark (issue 7: "push to s3rver vs plain PutObject of the same bytes"): the
 * overhead of nixcache's S3 layer. A generated body (256 MiB by default, streamed in 1 MiB chunks
 * so the input itself costs no memory) goes to s3rver on 127.0.0.1 four ways, alternating sides:
 *
 * - single: `S3Backend.put` with a known size (one streamed PutObject) vs the SDK's PutObject with
 *   the same Readable body and Content-Length;
 * - multipart: `S3Backend.put` with `multipart-upload=true` (lib-storage, 8 MiB parts, 2 in
 *   flight) vs lib-storage's `Upload` used directly with the same settings.
 *
 * Both sides use a client with the WHEN_REQUIRED checksum settings (the SDK defaults corrupt a
 * streamed body on s3rver, see s3.ts). Each cell is the median MB/s of its rounds; peak RSS is
 * sampled every 10 ms during each side's runs. s3rver (koa, MD5, a temp directory) bounds both.
 *
 * Run: `npx tsx bench/s3.ts [sizeMiB] [rounds]`, or call `runS3Bench()` from a runner.
 */

import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { S3Backend, s3ClientConfig } from '../src/store/s3.js';
import { parseStoreUrl } from '../src/store/url.js';
import { S3RVER_CREDENTIALS, startS3rver } from '../test/helpers/s3rver.js';

/** One measured comparison. */
export interface S3BenchRow {
  readonly name: string;
  readonly sizeMB: number;
  readonly oursMBps: number;
  readonly sdkMBps: number;
  /** ours / sdk (1.0 = no overhead). */
  readonly ratio: number;
  readonly oursPeakRssMB: number;
  readonly sdkPeakRssMB: number;
}

/** Options of {@link runS3Bench}. */
export interface S3BenchOptions {
  /** Body size in MiB (default 256). */
  readonly sizeMiB?: number;
  /** Rounds per side (default 3). */
  readonly rounds?: number;
  /** Print the table (default true). */
  readonly print?: boolean;
}

const MiB = 1024 * 1024;
const PART = 8 * MiB;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `size` bytes as 1 MiB chunks of one reused pseudo-random buffer. */
async function* body(size: number): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(MiB);
  let x = 0x9e3779b9;
  for (let i = 0; i < chunk.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    chunk[i] = x & 0xff;
  }
  for (let sent = 0; sent < size; sent += chunk.length) {
    yield sent + chunk.length <= size ? chunk : chunk.subarray(0, size - sent);
  }
}

/** Runs fn, returning seconds taken and the peak RSS (MB) sampled meanwhile. */
async function measure(fn: () => Promise<unknown>): Promise<{ seconds: number; peakMB: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  const start = process.hrtime.bigint();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, peakMB: peak / 1e6 };
}

/**
 * Measures S3Backend.put against the plain SDK on s3rver and returns one row per mode.
 *
 * @throws {Error} when s3rver cannot start or an upload fails.
 * @example const rows = await runS3Bench({ sizeMiB: 64, rounds: 1 })
 */
export async function runS3Bench(options: S3BenchOptions = {}): Promise<S3BenchRow[]> {
  const size = (options.sizeMiB ?? 256) * MiB;
  const rounds = options.rounds ?? 3;
  const print = options.print ?? true;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const s3 = await startS3rver({ buckets: ['bench'] });
  const rows: S3BenchRow[] = [];
  try {
    const base = `s3://bench?endpoint=${s3.endpoint}&region=us-east-1`;
    const single = new S3Backend(parseStoreUrl(base), { credentials: S3RVER_CREDENTIALS });
    const multi = new S3Backend(
      parseStoreUrl(`${base}&multipart-upload=true&multipart-chunk-size=${PART}&multipart-threshold=${PART}`),
      { credentials: S3RVER_CREDENTIALS, queueSize: 2 },
    );
    const client = new S3Client({ ...s3ClientConfig(parseStoreUrl(base)), credentials: S3RVER_CREDENTIALS });
    const cases = [
      {
        name: 'single PutObject (streamed)',
        ours: () => single.put('ours.nar', body(size), { contentType: 'application/x-nix-nar', size }),
        sdk: () =>
          client.send(
            new PutObjectCommand({
              Bucket: 'bench',
              Key: 'sdk.nar',
              Body: Readable.from(body(size)),
              ContentLength: size,
              ContentType: 'application/x-nix-nar',
            }),
          ),
      },
      {
        name: `multipart (${PART / MiB} MiB parts, 2 in flight)`,
        ours: () => multi.put('ours-mp.nar', body(size), { contentType: 'application/x-nix-nar', size }),
        sdk: () =>
          new Upload({
            client,
            params: {
              Bucket: 'bench',
              Key: 'sdk-mp.nar',
              Body: Readable.from(body(size)),
              ContentLength: size,
              ContentType: 'application/x-nix-nar',
            },
            partSize: PART,
            queueSize: 2,
          }).done(),
      },
    ];
    const baselineMB = process.memoryUsage.rss() / 1e6;
    if (print) {
      console.log(
        `S3 upload of ${size / MiB} MiB to s3rver at ${s3.endpoint}, ${rounds} round(s) per side; ` +
          `RSS before the first upload ${baselineMB.toFixed(0)} MB`,
      );
    }
    for (const c of cases) {
      const ours: number[] = [];
      const sdk: number[] = [];
      let oursPeak = 0;
      let sdkPeak = 0;
      for (let r = 0; r < rounds; r++) {
        // Alternate which side goes first: the second writer of a round pays for the first's
        // page-cache writeback in s3rver's directory.
        for (const side of r % 2 ? (['ours', 'sdk'] as const) : (['sdk', 'ours'] as const)) {
          const m = await measure(c[side]);
          if (side === 'ours') {
            ours.push(m.seconds);
            oursPeak = Math.max(oursPeak, m.peakMB);
          } else {
            sdk.push(m.seconds);
            sdkPeak = Math.max(sdkPeak, m.peakMB);
          }
        }
      }
      const mb = size / 1e6;
      const row: S3BenchRow = {
        name: c.name,
        sizeMB: mb,
        oursMBps: mb / median(ours),
        sdkMBps: mb / median(sdk),
        ratio: median(sdk) / median(ours),
        oursPeakRssMB: oursPeak,
        sdkPeakRssMB: sdkPeak,
      };
      rows.push(row);
      if (print) {
        console.log(
          `  ${row.name.padEnd(34)} ours ${row.oursMBps.toFixed(1).padStart(7)} MB/s  sdk ${row.sdkMBps
            .toFixed(1)
            .padStart(
              7,
            )} MB/s  ratio ${row.ratio.toFixed(2)}  peak RSS ours ${row.oursPeakRssMB.toFixed(0)} MB / sdk ${row.sdkPeakRssMB.toFixed(0)} MB`,
        );
      }
    }
    await single.close();
    await multi.close();
    client.destroy();
  } finally {
    await s3.stop();
  }
  return rows;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const sizeMiB = process.argv[2] ? Number(process.argv[2]) : undefined;
  const rounds = process.argv[3] ? Number(process.argv[3]) : undefined;
  await runS3Bench({ ...(sizeMiB !== undefined && { sizeMiB }), ...(rounds !== undefined && { rounds }) });
}
