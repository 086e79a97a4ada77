/**
 * A worker thread of the core group's "signature checks on worker threads" row (bench/core.ts):
 * parses the corpus narinfos it is given, checks their signatures once to warm up, says ready,
 * then on `go` checks them `passes` times with the synchronous libsodium back end, as each of
 * verify's worker threads does, and posts the seconds it took. Run bundled (bundleChild).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { makeKeyring, parseNarInfo, verifyNarInfo } from '../src/index.js';

interface Init {
  readonly texts: readonly string[];
  readonly key: string;
  readonly passes: number;
}

const { texts, key, passes } = workerData as Init;
const ring = makeKeyring([key]);
const infos = texts.map((t) => parseNarInfo(t));
const checkAll = (): void => {
  for (const info of infos) {
    if (!verifyNarInfo(info, ring, { backend: 'sodium' }).trusted) throw new Error('untrusted narinfo');
  }
};
checkAll();
parentPort!.once('message', () => {
  const start = performance.now();
  for (let i = 0; i < passes; i++) checkAll();
  parentPort!.postMessage((performance.now() - start) / 1000);
});
parentPort!.postMessage('ready');
