/**
 * The CLI against s3rver (started by the test on 127.0.0.1): init, push, verify, path-info,
 * sign and copy through s3:// URLs spelled as in Nix, credentials from the environment, and what
 * s3rver lacks (bucket policies) reported as one line with exit code 1.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { parseVerifyJson } from '../helpers/verify.js';
import { runCli } from './helpers.js';

let work: string;
let sample: SampleStore;
let s3: S3rverHandle;
let keyFile: string;
let publicKey: string;
let env: Record<string, string>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-cli-s3-'));
  await mkdir(join(work, 'store'));
  sample = await makeSampleStore(join(work, 'store'));
  s3 = await startS3rver();
  env = { ...s3ConfigFor(s3.endpoint, 'x').env };
  keyFile = join(work, 's3.secret');
  publicKey = (await runCli(['key', 'generate', '--name', 's3-test-1', '--out', keyFile])).stdout.trim();
});

afterAll(async () => {
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('the CLI on s3:// (s3rver)', () => {
  it('init creates the bucket and nix-cache-info; --public-read reports the missing bucket policy', async () => {
    const { url } = s3ConfigFor(s3.endpoint, 'cli-init');
    const r = await runCli(
      ['init', '--store', url, '--priority', '40', '--want-mass-query', '--public-read'],
      { env },
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^nixcache: s3:\/\/cli-init: anonymous read access \(a bucket policy.*not implemented/,
    );
    // nix-cache-info was written before the policy step; s3rver serves it anonymously.
    const res = await fetch(`${s3.endpoint}/cli-init/nix-cache-info`);
    expect(await res.text()).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
    const plain = await runCli(['init', '--store', url, '--priority', '40', '--json'], { env });
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.stdout)).toMatchObject({ store: 's3://cli-init', publicRead: false });
    const expiry = await runCli(['init', '--store', url, '--expire-days', '30'], { env });
    expect(expiry.code).toBe(1);
    expect(expiry.stderr).toMatch(/lifecycle rule/);
  });

  it('push, verify, path-info, sign and copy', async () => {
    const { url } = s3ConfigFor(s3.endpoint, 'cli-cache', 'some/prefix');
    expect((await runCli(['init', '--store', url], { env })).code).toBe(0);
    const push = await runCli(
      [
        'push',
        '--to',
        `${url}&compression=zstd`,
        '--secret-key-file',
        keyFile,
        '--store-dir',
        join(work, 'store'),
        '--json',
        sample.hello,
      ],
      { env },
    );
    expect(push.code, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout).pushed).toEqual([sample.data, sample.lib, sample.hello]);

    const verify = await runCli(['verify', '--store', url, '-k', publicKey, '--all', '--json'], { env });
    expect(verify.code, verify.stderr).toBe(0);
    expect(parseVerifyJson(verify.stdout).summary).toMatchObject({ total: 3, ok: 3 });

    const info = await runCli(['path-info', '--store', url, '--json', sample.lib], { env });
    expect(JSON.parse(info.stdout)[0]).toMatchObject({
      path: sample.lib,
      compression: 'zstd',
      references: [sample.data],
    });
    // Anonymous HTTP sees the same cache, as Nix will.
    const http = await runCli([
      'path-info',
      '--store',
      `${s3.endpoint}/cli-cache/some/prefix`,
      '--json',
      sample.lib,
    ]);
    expect(JSON.parse(http.stdout)).toEqual(JSON.parse(info.stdout));

    const second = join(work, 'second.secret');
    const secondPub = (
      await runCli(['key', 'generate', '--name', 's3-second-1', '--out', second])
    ).stdout.trim();
    const sign = await runCli(['sign', '--store', url, '--key-file', second, '--all', '--json'], { env });
    expect(sign.code, sign.stderr).toBe(0);
    expect(JSON.parse(sign.stdout.trimEnd().split('\n').at(-1)!).summary.signed).toBe(3);
    const bySecond = await runCli(
      ['verify', '--store', url, '-k', secondPub, '--all', '--no-contents', '--json'],
      { env },
    );
    expect(parseVerifyJson(bySecond.stdout).reports.map((r: { signedBy: string[] }) => r.signedBy)).toEqual([
      ['s3-second-1'],
      ['s3-second-1'],
      ['s3-second-1'],
    ]);

    const target = join(work, 'from-s3');
    const copy = await runCli(
      ['copy', '--from', url, '--to', `file://${target}`, '-k', publicKey, sample.hello],
      { env },
    );
    expect(copy.code, copy.stderr).toBe(0);
    expect(copy.stdout).toBe(
      `copied 3 paths from s3://cli-cache/some/prefix to file://${target}, skipped 0 already there, 0 failed\n`,
    );
    // Like `nix copy --to s3://…`, copy needs an existing bucket: without it the first read
    // (nix-cache-info, before anything is written) fails, naming the bucket (exit 1).
    const noBucket = await runCli(
      ['copy', '--from', `file://${target}`, '--to', s3ConfigFor(s3.endpoint, 'cli-copy').url, sample.data],
      { env },
    );
    expect(noBucket.code).toBe(1);
    expect(noBucket.stderr).toMatch(/^nixcache: .*bucket 'cli-copy' does not exist/);
    expect((await runCli(['init', '--store', s3ConfigFor(s3.endpoint, 'cli-copy').url], { env })).code).toBe(
      0,
    );
    const back = await runCli(
      ['copy', '--from', `file://${target}`, '--to', s3ConfigFor(s3.endpoint, 'cli-copy').url, sample.hello],
      { env },
    );
    expect(back.code, back.stderr).toBe(0);
    const check = await runCli(
      ['verify', '--store', s3ConfigFor(s3.endpoint, 'cli-copy').url, '-k', publicKey, '--all'],
      { env },
    );
    expect(check.stdout).toMatch(/checked 3 paths in s3:\/\/cli-copy: 3 ok\n$/);
  });
  it('push and verify with credentials in the environment never load the AWS SDK; init does', async () => {
    // A preload that writes, at exit, which @aws-sdk modules the process loaded.
    const probe = join(work, 'sdk-probe.cjs');
    await writeFile(
      probe,
      "process.on('exit', () => require('node:fs').writeFileSync(process.env.SDK_PROBE_OUT, " +
        "JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('@aws-sdk')))));\n",
    );
    const out = join(work, 'sdk-probe.json');
    const probed = async (args: string[]) => {
      const r = await runCli(args, {
        env: { ...env, NODE_OPTIONS: `--require ${probe}`, SDK_PROBE_OUT: out },
      });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(await readFile(out, 'utf8')) as string[];
    };
    const { url } = s3ConfigFor(s3.endpoint, 'cli-lazy-sdk');
    // init creates the bucket (HeadBucket, CreateBucket): the SDK's work, so the probe sees it.
    expect((await probed(['init', '--store', url])).some((k) => k.includes('client-s3'))).toBe(true);
    const push = [
      'push',
      '--to',
      url,
      '--secret-key-file',
      keyFile,
      '--store-dir',
      join(work, 'store'),
      sample.hello,
    ];
    // Listing, reading nix-cache-info, HEADs, small PUTs: all direct requests.
    expect(await probed(push)).toEqual([]);
    expect(await probed(['verify', '--store', url, '-k', publicKey, '--all'])).toEqual([]);
  });
});
