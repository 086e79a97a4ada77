/**
 * The writer policy and anonymous read (issue 14 item 3): `init --writer-policy-out` writes valid
 * IAM JSON with exactly the writer's actions (plus s3:DeleteObject with --writer-gc), narrowed to
 * the store URL's prefix, and prints the mc admin and aws iam commands; `init --public-read` sends
 * a bucket policy granting anonymous s3:GetObject on the cache's objects and nothing else (no
 * listing).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IamPolicy, writerPolicy } from '../../src/store/s3-policy.js';
import { faults, type LoopbackProxy, s3ErrorXml, startProxy } from '../helpers/proxy.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { runCli } from './helpers.js';

const SEVEN = [
  's3:AbortMultipartUpload',
  's3:GetBucketLocation',
  's3:GetObject',
  's3:ListBucket',
  's3:ListBucketMultipartUploads',
  's3:ListMultipartUploadParts',
  's3:PutObject',
];
const BUCKET_LEVEL = new Set(['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads']);

let work: string;
let s3: S3rverHandle;
let proxy: LoopbackProxy;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-writer-policy-'));
  s3 = await startS3rver({ buckets: ['nix-cache'] });
  proxy = await startProxy({ target: s3.endpoint });
});
afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

/** The checks IAM makes of a policy document, as far as they concern these policies. */
function expectValidIam(policy: unknown): asserts policy is IamPolicy {
  const doc = policy as Record<string, unknown>;
  expect(Object.keys(doc).sort()).toEqual(['Statement', 'Version']);
  expect(doc.Version).toBe('2012-10-17');
  expect(Array.isArray(doc.Statement)).toBe(true);
  const sids = new Set<string>();
  for (const s of doc.Statement as Record<string, unknown>[]) {
    for (const key of Object.keys(s))
      expect(['Sid', 'Effect', 'Action', 'Resource', 'Condition']).toContain(key);
    expect(s.Sid).toMatch(/^[A-Za-z0-9]+$/);
    expect(sids.has(s.Sid as string)).toBe(false);
    sids.add(s.Sid as string);
    expect(s.Effect).toBe('Allow');
    // An identity policy: no Principal.
    expect(s).not.toHaveProperty('Principal');
    for (const a of s.Action as string[]) expect(a).toMatch(/^s3:[A-Za-z]+$/);
    for (const r of s.Resource as string[]) expect(r).toMatch(/^arn:aws:s3:::[a-z0-9.-]+(\/[^*]*\*)?$/);
    if (s.Condition !== undefined) {
      expect(Object.keys(s.Condition as object)).toEqual(['StringLike']);
    }
  }
}

const actionsOf = (p: IamPolicy) => p.Statement.flatMap((s) => s.Action).sort();

describe('writerPolicy', () => {
  it('grants exactly the seven writer actions on the bucket and its objects', () => {
    const p = writerPolicy('nix-cache', '');
    expectValidIam(JSON.parse(JSON.stringify(p)));
    expect(actionsOf(p)).toEqual(SEVEN);
    for (const s of p.Statement) {
      for (const a of s.Action) {
        expect(s.Resource).toEqual(
          BUCKET_LEVEL.has(a) ? ['arn:aws:s3:::nix-cache'] : ['arn:aws:s3:::nix-cache/*'],
        );
      }
      expect(s.Condition).toBeUndefined();
    }
  });

  it('is narrowed to the prefix: objects under it, listing with an s3:prefix condition', () => {
    const p = writerPolicy('nix-cache', 'ci/x86');
    expectValidIam(JSON.parse(JSON.stringify(p)));
    expect(actionsOf(p)).toEqual(SEVEN);
    for (const s of p.Statement) {
      for (const a of s.Action) {
        expect(s.Resource).toEqual(
          BUCKET_LEVEL.has(a) ? ['arn:aws:s3:::nix-cache'] : ['arn:aws:s3:::nix-cache/ci/x86/*'],
        );
      }
      if (s.Action.includes('s3:ListBucket')) {
        expect(s.Action).toEqual(['s3:ListBucket']);
        expect(s.Condition).toEqual({ StringLike: { 's3:prefix': ['ci/x86', 'ci/x86/*'] } });
      } else expect(s.Condition).toBeUndefined();
    }
  });

  it('adds s3:DeleteObject on the objects only when asked for gc', () => {
    const p = writerPolicy('nix-cache', 'ci', { gc: true });
    expect(actionsOf(p)).toEqual([...SEVEN, 's3:DeleteObject'].sort());
    const del = p.Statement.find((s) => s.Action.includes('s3:DeleteObject'))!;
    expect(del.Resource).toEqual(['arn:aws:s3:::nix-cache/ci/*']);
  });
});

describe('init --writer-policy-out', () => {
  it('writes the policy file and prints the mc admin and aws iam commands', async () => {
    const c = s3ConfigFor(s3.endpoint, 'nix-cache', 'team/cache');
    const file = join(work, 'writer policy.json');
    const r = await runCli(['init', '--store', c.url, '--writer-policy-out', file, '--writer', 'ci-pusher'], {
      env: c.env,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const policy = JSON.parse(await readFile(file, 'utf8'));
    expectValidIam(policy);
    expect(actionsOf(policy)).toEqual(SEVEN);
    expect(policy).toEqual(JSON.parse(JSON.stringify(writerPolicy('nix-cache', 'team/cache'))));
    const quoted = `'${file}'`;
    expect(r.stdout).toContain(`mc admin policy create ALIAS nixcache-writer-nix-cache ${quoted}`);
    expect(r.stdout).toContain('mc admin policy attach ALIAS nixcache-writer-nix-cache --user ci-pusher');
    expect(r.stdout).toContain(
      `aws iam put-user-policy --user-name ci-pusher --policy-name nixcache-writer-nix-cache --policy-document file://${quoted}`,
    );

    const json = await runCli(
      ['init', '--store', c.url, '--writer-policy-out', file, '--writer-gc', '--json'],
      { env: c.env },
    );
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(out.writerPolicy.writer).toBe('nixcache-writer');
    expect(out.writerPolicy.commands.aws).toHaveLength(1);
    expect(actionsOf(JSON.parse(await readFile(file, 'utf8')))).toContain('s3:DeleteObject');
  });

  it('is a usage error for a store that is not s3://, and for --writer without the file', async () => {
    const notS3 = await runCli([
      'init',
      '--store',
      `file://${join(work, 'cache')}`,
      '--writer-policy-out',
      join(work, 'p.json'),
    ]);
    expect(notS3.code).toBe(2);
    expect(notS3.stderr).toContain('s3://');
    const alone = await runCli(['init', '--store', `file://${join(work, 'cache')}`, '--writer', 'x']);
    expect(alone.code).toBe(2);
  });
});

describe('init --public-read', () => {
  it('sends a bucket policy that grants anonymous s3:GetObject on the objects only (no listing)', async () => {
    const c = s3ConfigFor(proxy.endpoint, 'nix-cache', 'pub');
    proxy.clear();
    // s3rver has no bucket policies: the proxy plays a server that has them.
    proxy.onRequest = (r) => {
      if (!r.url.includes('?policy')) return undefined;
      if (r.method === 'GET')
        return {
          kind: 'status',
          status: 404,
          body: s3ErrorXml('NoSuchBucketPolicy', 'The bucket policy does not exist'),
          headers: { 'content-type': 'application/xml' },
        };
      if (r.method === 'PUT') return { kind: 'status', status: 204 };
      return faults.internalError;
    };
    try {
      const r = await runCli(['init', '--store', c.url, '--public-read'], { env: c.env });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    } finally {
      proxy.onRequest = undefined;
    }
    const puts = proxy.find('PUT', '?policy');
    expect(puts).toHaveLength(1);
    const sent = JSON.parse(puts[0]!.text());
    expect(sent.Version).toBe('2012-10-17');
    expect(sent.Statement).toEqual([
      {
        Sid: 'NixcachePublicRead',
        Effect: 'Allow',
        Principal: { AWS: ['*'] },
        Action: ['s3:GetObject'],
        Resource: ['arn:aws:s3:::nix-cache/pub/*'],
      },
    ]);
  });
});
