/**
 * The anchor of the small-paths push to s3rver (bench/small-paths.ts): the plain AWS SDK puts
 * every file of a file:// cache into a new bucket, N at once, each body read into memory first.
 * Run bundled: `node sdk-put-child.mjs ENDPOINT BUCKET DIR [N]`.
 */
import * as fs from 'node:fs';
import { join, relative } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { s3rverClient } from './bench-child.js';

/** Files of a directory tree, relative paths. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out;
}

/** Child: the plain SDK puts every file of a file:// cache into a bucket, parallelism at once. */
async function sdkChild([endpoint, bucket, dir, n]: string[]): Promise<void> {
  const parallelism = Number(n ?? 2);
  const keys = filesUnder(dir!);
  const start = performance.now();
  const client = s3rverClient(endpoint!);
  await client.send(new CreateBucketCommand({ Bucket: bucket! }));
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const body = fs.readFileSync(join(dir!, key));
      await client.send(
        new PutObjectCommand({
          Bucket: bucket!,
          Key: key,
          Body: body,
          ContentType: key.endsWith('.narinfo') ? 'text/x-nix-narinfo' : 'application/x-nix-nar',
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: parallelism }, worker));
  client.destroy();
  console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000 }));
}

await sdkChild(process.argv.slice(2));
