/**
 * The s3rver rows of the scale group (issue 11 item 8), on one synthetic cache uploaded once:
 * - `verify --all --no-contents` against the plain AWS SDK listing the bucket and GETting every
 *   narinfo at the same concurrency (the floor of any S3 client);
 * - `sign --all` against the plain SDK listing, GETting every narinfo and PUTting it back with
 *   one more line, at sign's concurrency. Each run of ours signs with a key of its own, so every
 *   run rewrites every narinfo, as the anchor does.
 * Whole processes, alternating, with CPU time and peak RSS.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { formatSecretKey, generateSecretKey } from '../src/signing/keys.js';
import { bundleChild, s3rverChildEnv, s3rverClient } from './bench-child.js';
import { measure, runSides } from './child-run.js';
import { section } from './harness.js';
import { type MoreScaleOptions, recordTriple } from './scale-more.js';
import { generateSyntheticCache } from './synthetic-cache.js';

/** Puts every file of a directory into a bucket, 32 at once. */
async function upload(endpoint: string, bucket: string, dir: string): Promise<void> {
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = s3rverClient(endpoint);
  const names = fs.readdirSync(dir);
  let next = 0;
  const lane = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: name, Body: fs.readFileSync(join(dir, name)) }),
      );
    }
  };
  await Promise.all(Array.from({ length: 32 }, lane));
  client.destroy();
}

/** `sign`'s default number of narinfos at once (src/cache/sign.ts), the anchor's too. */
const SIGN_PARALLELISM = 16;

/** `verify --all --no-contents` and `sign --all` of a cache in s3rver against the plain SDK. */
export async function benchScaleS3(o: MoreScaleOptions): Promise<void> {
  section(`scale: verify --all --no-contents and sign --all of ${o.count} synthetic narinfos in s3rver`);
  const source = join(o.tmp, `s3-source-${o.count}`);
  const { startS3rver } = await import('../test/helpers/s3rver.js');
  const s3 = await startS3rver({ buckets: ['scale'] });
  const url = `s3://scale?endpoint=${s3.endpoint}&region=us-east-1`;
  const env = { ...s3rverChildEnv(), NO_COLOR: '1' };
  try {
    const started = performance.now();
    const cache = await generateSyntheticCache({ dir: source, count: o.count, seed: 9 });
    await upload(s3.endpoint, 'scale', source);
    console.log(`  (uploaded ${o.count} narinfos in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    const getChild = await bundleChild('sdk-get-child');
    // Ours: its defaults (worker threads, 64 requests in flight in all); the SDK: 64 at once.
    const verify = runSides(
      {
        ours: () =>
          measure(
            process.execPath,
            [o.cli, 'verify', '--store', url, '--all', '--no-contents', '-k', cache.publicKey],
            env,
            o.withTime,
          ),
        sdk: () => measure(process.execPath, [getChild, s3.endpoint, 'scale', '64'], env, o.withTime),
      },
      o.rounds,
    );
    recordTriple(verify, {
      what: 'verify --all --no-contents (s3rver)',
      count: o.count,
      anchorSide: 'sdk',
      anchorName: 'plain SDK list + GET each',
      note: 'the SDK only downloads; ours also parses and checks every signature',
    });

    const signChild = await bundleChild('sdk-sign-child');
    let keys = 0;
    const sign = runSides(
      {
        ours: () => {
          const keyFile = join(o.tmp, `s3-sign-${keys}.secret`);
          fs.writeFileSync(keyFile, formatSecretKey(generateSecretKey(`bench-s3-sign-${keys++}`)), {
            mode: 0o600,
          });
          try {
            // Exit 0: every narinfo was signed or already had the signature (and no run had it).
            return measure(
              process.execPath,
              [o.cli, 'sign', '--store', url, '--key-file', keyFile, '--all'],
              env,
              o.withTime,
            );
          } finally {
            fs.rmSync(keyFile, { force: true });
          }
        },
        sdk: () =>
          measure(
            process.execPath,
            [signChild, s3.endpoint, 'scale', String(SIGN_PARALLELISM)],
            env,
            o.withTime,
          ),
      },
      o.rounds,
    );
    // Both rewrote the narinfos: one in the bucket carries every run's signature. The anchor
    // appends its line each run and ours keeps identical lines as one (a narinfo's signatures are
    // a set). Sides alternate (ours first in even rounds): after an odd number of rounds above
    // one, the anchor ran last, after ours had left one line, so its line is there twice.
    const sample = fs.readdirSync(source).find((n) => n.endsWith('.narinfo'))!;
    const client = s3rverClient(s3.endpoint);
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const got = await client.send(new GetObjectCommand({ Bucket: 'scale', Key: sample }));
    const text = await got.Body!.transformToString();
    client.destroy();
    const count = (re: RegExp) => text.match(re)?.length ?? 0;
    const anchorLines = o.rounds > 1 && o.rounds % 2 === 1 ? 2 : 1;
    if (count(/^Sig: bench-s3-sign-/gm) !== keys || count(/^Sig: anchor-1:/gm) !== anchorLines)
      throw new Error(`the sign runs did not rewrite ${sample}:\n${text}`);
    recordTriple(sign, {
      what: 'sign --all (s3rver)',
      count: o.count,
      anchorSide: 'sdk',
      anchorName: 'plain SDK list + GET + PUT each',
      note: `${SIGN_PARALLELISM} at once both; the SDK only moves the bytes; ours also parses, signs and writes conditionally`,
    });
  } finally {
    await s3.stop();
    fs.rmSync(source, { recursive: true, force: true });
  }
}
