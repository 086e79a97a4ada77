/**
 * Helpers for the benchmarks' plain-SDK anchor children (sdk-put-child.ts, sdk-get-child.ts):
 * bundling one with esbuild, so that it runs as a plain node process like the bundled CLI and
 * neither side pays for tsx, the S3 client both use against s3rver, and the environment of any
 * child that talks to s3rver.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { build } from 'esbuild';
import { S3RVER_CREDENTIALS } from '../test/helpers/s3rver.js';

const benchDir = dirname(fileURLToPath(import.meta.url));

/** Bundles bench/NAME.ts into bench/.build/NAME.mjs (dependencies external); returns its path. */
export async function bundleChild(name: string): Promise<string> {
  const outfile = join(benchDir, '.build', `${name}.mjs`);
  await build({
    entryPoints: [join(benchDir, `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * The environment of a child process that talks to s3rver: its credentials, and no warning from
 * the AWS SDK about Node 20.
 */
export function s3rverChildEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/** A plain SDK client for s3rver (path style, its fixed credentials, checksums only when required). */
export function s3rverClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The keys of every `.narinfo` in a bucket, page by page (the anchors' listing). */
export async function listNarInfoKeys(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 1000 }),
    );
    for (const o of page.Contents ?? []) if (o.Key?.endsWith('.narinfo')) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}
