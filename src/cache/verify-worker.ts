/**
 * A worker thread of `verifyCache` (started by verify-pool.ts): opens the store again from its
 * URL, takes batches of paths, checks each with `verifyOne` (signatures checked synchronously:
 * this thread is the parallelism) and sends the reports back in batches, with the NAR bytes
 * checked since the last message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { NixcacheError } from '../errors.js';
import { makeKeyring, verifyNarInfo } from '../signing/verify.js';
import { openStore } from '../store/open.js';
import type { CheckTrust, PathReport } from './verify-check.js';
import { verifyOne } from './verify-check.js';
import type { PathsMessage, VerifyWorkerInit, VerifyWorkerMessage } from './verify-pool.js';

const port = parentPort;
if (!port) throw new Error('verify-worker runs only as a worker thread');
const init = workerData as VerifyWorkerInit;

/** Reports held before a message goes out anyway (they also go at the end of each turn). */
const FLUSH_REPORTS = 64;
/** Byte counts alone go out at most this often (progress while a large NAR streams). */
const BYTES_INTERVAL_MS = 100;

function send(message: VerifyWorkerMessage): void {
  port!.postMessage(message);
}

function failWith(e: unknown): void {
  send({
    type: 'failed',
    ...(e instanceof NixcacheError && { code: e.code }),
    message: (e as Error)?.message ?? String(e),
  });
}

async function main(): Promise<void> {
  // Warnings about the URL were printed by the main thread already.
  const store = await openStore(init.store.url, { ...init.store.options, onWarning: () => {} });
  const ring = makeKeyring(init.trustedKeys);
  const backend = init.backend === undefined ? {} : { backend: init.backend };
  const checkTrust: CheckTrust = (info) => verifyNarInfo(info, ring, backend);

  let queue: string[] = [];
  let head = 0;
  let active = 0;
  let reports: PathReport[] = [];
  let bytes = 0;
  let flushQueued = false;
  let bytesTimed = false;

  const flush = (): void => {
    flushQueued = false;
    if (!reports.length && !bytes) return;
    send({ type: 'reports', json: JSON.stringify(reports), bytes });
    reports = [];
    bytes = 0;
  };
  const flushSoon = (): void => {
    if (flushQueued) return;
    flushQueued = true;
    setImmediate(flush);
  };
  const onBytes = (n: number): void => {
    bytes += n;
    if (bytesTimed) return;
    bytesTimed = true;
    setTimeout(() => {
      bytesTimed = false;
      flush();
    }, BYTES_INTERVAL_MS);
  };
  const check = async (query: string): Promise<void> => {
    let report: PathReport;
    try {
      report = await verifyOne(store, query, checkTrust, init.contents, undefined, onBytes);
    } catch (e) {
      failWith(e);
      return;
    }
    active--;
    reports.push(report);
    if (reports.length >= FLUSH_REPORTS) flush();
    else flushSoon();
    pump();
  };
  const pump = (): void => {
    while (active < init.parallelism && head < queue.length) {
      const query = queue[head]!;
      queue[head++] = '';
      active++;
      void check(query);
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
    }
  };
  port!.on('message', (m: PathsMessage) => {
    for (const p of m.paths) queue.push(p);
    pump();
  });
}

main().catch(failWith);
