/**
 * The s3:// driver bundled into one file (esbuild, as an application shipping nixcache would) runs
 * where no node_modules is within reach: the AWS SDK, which the driver loads only when a request
 * needs it (src/store/s3-sdk.ts), is inside the bundle because it is loaded with an `import()`
 * bundlers follow. Checked against s3rver with a bucket to create (HeadBucket, CreateBucket go
 * through the SDK) and a write and a listing (direct requests).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/env.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';

let s3: S3rverHandle;
let dir: string;

beforeAll(async () => {
  s3 = await startS3rver();
  dir = await mkdtemp(join(tmpdir(), 'nixcache-s3-bundle-'));
});

afterAll(async () => {
  await s3?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the s3:// driver in a bundle', () => {
  it('creates a bucket, writes and lists with the SDK inside the bundle', async () => {
    const entry = join(dir, 'entry.mjs');
    const src = (p: string) => JSON.stringify(join(repoRoot, 'src', p));
    await writeFile(
      entry,
      [
        `import { S3Backend } from ${src('store/s3.ts')};`,
        `import { parseStoreUrl } from ${src('store/url.ts')};`,
        'const b = new S3Backend(parseStoreUrl(process.argv[2]), {});',
        'const { created } = await b.ensureBucket();',
        "await b.put('x.narinfo', new TextEncoder().encode('x'), { contentType: 'text/x-nix-narinfo' });",
        'const keys = [];',
        "for await (const k of b.list('')) keys.push(k);",
        'await b.close();',
        'console.log(JSON.stringify({ created, keys }));',
      ].join('\n'),
    );
    const out = join(dir, 'app.mjs');
    await build({
      entryPoints: [entry],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'error',
      // Native addons stay outside a bundle; the S3 driver needs none of them.
      external: ['zstd-napi', 'node-liblzma', 'sodium-native', 'better-sqlite3'],
      // The SDK is CommonJS and requires Node's modules.
      banner: {
        js: "import { createRequire as nixcacheRequire } from 'node:module'; const require = nixcacheRequire(import.meta.url);",
      },
    });
    const config = s3ConfigFor(s3.endpoint, 'bundled-cache');
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        [out, config.url],
        {
          cwd: dir,
          env: { ...process.env, ...config.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve({ stdout }),
      );
    });
    expect(JSON.parse(stdout)).toEqual({ created: true, keys: ['x.narinfo'] });
  });
});
