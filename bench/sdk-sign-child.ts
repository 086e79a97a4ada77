/**
 * The anchor of `sign --all` against s3rver (bench/scale-s3.ts): the plain AWS SDK lists a bucket,
 * GETs every `.narinfo` and PUTs it back with one more `Sig:` line (a fixed one: the anchor does
 * the I/O of signing, not the signing), N at once, and does nothing else.
 * Run bundled: `node sdk-sign-child.mjs ENDPOINT BUCKET N`.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { listNarInfoKeys, s3rverClient } from './bench-child.js';

const SIG = `Sig: anchor-1:${Buffer.alloc(64, 7).toString('base64')}\n`;

async function sdkChild([endpoint, bucket, n]: string[]): Promise<void> {
  const parallelism = Number(n ?? 16);
  const start = performance.now();
  const client = s3rverClient(endpoint!);
  const keys = await listNarInfoKeys(client, bucket!);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const r = await client.send(new GetObjectCommand({ Bucket: bucket!, Key: key }));
      const text = await r.Body!.transformToString();
      await client.send(
        new PutObjectCommand({
          Bucket: bucket!,
          Key: key,
          Body: text + SIG,
          ContentType: 'text/x-nix-narinfo',
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: parallelism }, worker));
  client.destroy();
  console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000, objects: keys.length }));
}

await sdkChild(process.argv.slice(2));
