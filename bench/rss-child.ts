/**
 * The child process of the peak-RSS benchmark (bench/cache.ts), bundled with esbuild and run by
 * plain node as the CLI runs: a push or a verify of one store path in a file:// cache, printing
 * its peak RSS, the RSS before any work, the high-water mark of ArrayBuffer memory and the time,
 * as one JSON line.
 *
 * Usage: node rss-child.mjs push|verify STORE_DIR STORE_PATH CACHE_DIR COMPRESSION KEY_FILE
 */
import * as fs from 'node:fs';
import { pushPaths } from '../src/cache/push.js';
import { verifyCache } from '../src/cache/verify.js';
import { parseSecretKey } from '../src/signing/keys.js';
import { openStore } from '../src/store/open.js';

async function main(argv: string[]): Promise<void> {
  const [op, storeDir, path, cacheDir, compression, keyFile] = argv as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const baselineMB = process.memoryUsage.rss() / 2 ** 20;
  // Buffers (NAR chunks, compressed chunks, reads of the staged file) are most of what a push
  // holds above the baseline, live or waiting for a GC: their high-water mark, sampled.
  let arrayBuffers = 0;
  const sampler = setInterval(() => {
    arrayBuffers = Math.max(arrayBuffers, process.memoryUsage().arrayBuffers);
  }, 20);
  const started = performance.now();
  const store = await openStore(`file://${cacheDir}?compression=${compression}`);
  const key = parseSecretKey(fs.readFileSync(keyFile, 'utf8'));
  if (op === 'push') {
    const r = await pushPaths(store, [path], { storeDir, secretKeys: [key], closure: false });
    if (r.failed.length) throw r.failed[0]!.error;
  } else {
    const bad: unknown[] = [];
    const r = await verifyCache(store, {
      trustedKeys: [key.publicKey],
      onReport: (report) => void (report.status !== 'ok' && bad.push(report)),
    });
    if (!r.ok) throw new Error(`verify: ${JSON.stringify(bad)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const peakMB = (process.resourceUsage().maxRSS * 1024) / 2 ** 20;
  console.log(JSON.stringify({ peakMB, baselineMB, arrayBuffersMB: arrayBuffers / 2 ** 20, seconds }));
}

await main(process.argv.slice(2));
