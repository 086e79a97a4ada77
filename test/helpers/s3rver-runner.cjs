/**
 * Child-process entry point for the test S3 server (see s3rver.ts beside this file). Runs s3rver
 * on 127.0.0.1 and prints one JSON line `{"port":N}` once it listens. Started with
 * `node --openssl-legacy-provider` because s3rver's ListObjectsV2 continuation tokens use DES.
 *
 * Usage: node --openssl-legacy-provider s3rver-runner.cjs <directory> <port> [bucket...]
 */
'use strict';

const S3rver = require('s3rver');

async function main() {
  const [directory, portText, ...buckets] = process.argv.slice(2);
  if (!directory) throw new Error('usage: s3rver-runner.cjs <directory> <port> [bucket...]');
  const server = new S3rver({
    address: '127.0.0.1',
    port: Number(portText ?? 0),
    directory,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const address = await server.run();
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent going away (crash, killed test worker) must not leave a server behind.
  process.on('disconnect', stop);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? String(err)}\n`);
  process.exit(1);
});
