/**
 * A worker thread of the core group's "signature checks on worker threads" row (bench/core.ts):
 * parses the corpus narinfos it is given, warms up, says ready, then on `go` runs its work
 * `passes` times and posts the seconds it took. The work is `sodium`, the synchronous libsodium
 * checks each of verify's worker threads makes, or `sha256`, a plain native CPU loop that shows
 * what the machine gives a second thread. Run bundled (bundleChild).
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { makeKeyring, parseNarInfo, verifyNarInfo } from '../src/index.js';

export interface SigWorkerInit {
  readonly work: 'sodium' | 'sha256';
  readonly texts: readonly string[];
  readonly key: string;
  readonly passes: number;
}

const { work, texts, key, passes } = workerData as SigWorkerInit;
const ring = makeKeyring([key]);
const infos = texts.map((t) => parseNarInfo(t));
const block = new Uint8Array(64 * 1024).fill(7);
const once = (): void => {
  if (work === 'sha256') {
    for (let i = 0; i < 100; i++) createHash('sha256').update(block).digest();
    return;
  }
  for (const info of infos) {
    if (!verifyNarInfo(info, ring, { backend: 'sodium' }).trusted) throw new Error('untrusted narinfo');
  }
};
for (let i = 0; i < 3; i++) once();
parentPort!.once('message', () => {
  const start = performance.now();
  for (let i = 0; i < passes; i++) once();
  parentPort!.postMessage((performance.now() - start) / 1000);
});
parentPort!.postMessage('ready');
