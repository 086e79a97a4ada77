/**
 * One worker thread that xz-encodes small inputs for `compressBytes`, one after the other, with
 * liblzma's one-shot encoder: the calling thread stays free for what overlaps with compression
 * (dumping the next NAR, uploads, narinfo writes), and one encoder at a time keeps liblzma's
 * tables in one reused heap block, as encoding on the calling thread did. The worker is started
 * on first use and lets the process exit whenever nothing is queued; its code is inline (no file
 * of its own), so it works from a bundle too. It loads node-liblzma from the same place this
 * module does.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** Runs in the worker: `{ id, input, preset, check }` in, `{ id, output }` or `{ id, error }` out. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const loaded = import(workerData.liblzma);
loaded.catch(() => {}); // reported with the first input
parentPort.on('message', async ({ id, input, preset, check }) => {
  try {
    const lzma = await loaded;
    const out = lzma.xzSync(Buffer.from(input.buffer, input.byteOffset, input.byteLength), { preset, check: lzma.check[check] });
    const copy = new Uint8Array(out.length);
    copy.set(out);
    parentPort.postMessage({ id, output: copy }, [copy.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
});
`;

interface Pending {
  resolve(out: Uint8Array): void;
  reject(e: Error): void;
}

let worker: Worker | undefined;
const pending = new Map<number, Pending>();
let nextId = 0;

function failAll(e: Error): void {
  for (const p of pending.values()) p.reject(e);
  pending.clear();
}

function start(): Worker {
  const liblzma = pathToFileURL(createRequire(import.meta.url).resolve('node-liblzma')).href;
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { liblzma } });
  w.on('message', (m: { id: number; output?: Uint8Array; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.output) p.resolve(m.output);
    else p.reject(new Error(m.error ?? 'xz worker failed'));
  });
  const gone = (e: Error) => {
    if (worker === w) worker = undefined;
    failAll(e);
  };
  w.on('error', gone);
  w.on('exit', (code) => gone(new Error(`xz worker exited (code ${code})`)));
  // Only after the listeners: adding a 'message' listener refs the worker again (Node 20), and a
  // worker started ahead of time (`startXzWorker`) that never got an input kept the process
  // alive after a push of large NARs only.
  w.unref();
  return w;
}

/**
 * Starts the worker ahead of the first input (it takes tens of milliseconds to load liblzma),
 * e.g. while a push is still finding out what to upload. Does nothing when it runs already, and
 * never fails: a problem shows with the first input.
 */
export function startXzWorker(): void {
  if (process.env.NIXCACHE_XZ_INLINE === '1') return;
  try {
    worker ??= start();
  } catch {
    // node-liblzma is not installed: compressBytes reports MISSING_DEPENDENCY.
  }
}

/**
 * xz-encodes `input` (CRC64 check, as the streaming encoder) in the worker thread.
 *
 * @throws Error when liblzma fails or the worker dies (the caller maps it to COMPRESSION).
 */
export function xzInWorker(input: Uint8Array, preset: number): Promise<Uint8Array> {
  worker ??= start();
  const w = worker;
  const id = nextId++;
  return new Promise<Uint8Array>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    // A view (a pooled Buffer, a slice of a read buffer) would clone its whole ArrayBuffer: send
    // a copy of just these bytes, moved rather than cloned.
    const own = new Uint8Array(input);
    w.postMessage({ id, input: own, preset, check: 'CRC64' }, [own.buffer]);
  });
}
