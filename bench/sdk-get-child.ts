/**
 * The anchor of `verify --all --no-contents` against s3rver (bench/scale-more.ts): the plain AWS
 * SDK lists a bucket and GETs every `.narinfo` into memory, N at once, and does nothing else.
 * Run bundled: `node sdk-get-child.mjs ENDPOINT BUCKET N`.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { listNarInfoKeys, s3rverClient } from './bench-child.js';

async function sdkChild([endpoint, bucket, n]: string[]): Promise<void> {
  const parallelism = Number(n ?? 64);
  const start = performance.now();
  const client = s3rverClient(endpoint!);
  const keys = await listNarInfoKeys(client, bucket!);
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const r = await client.send(new GetObjectCommand({ Bucket: bucket!, Key: key }));
      bytes += (await r.Body!.transformToByteArray()).length;
    }
  };
  await Promise.all(Array.from({ length: parallelism }, worker));
  client.destroy();
  console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000, objects: keys.length, bytes }));
}

await sdkChild(process.argv.slice(2));
