/**
 * `verifyCache` on worker threads (Node): each worker opens the same store again, reads, parses
 * and checks its paths with synchronous signature checks, so a whole-cache verify uses every core
 * for the work that costs (Ed25519, parsing, NAR decoding and hashing) instead of one main thread
 * feeding libuv's pool. The main thread only lists, hands out paths in small batches and takes the
 * reports back in order of completion, with a fixed window per worker: memory stays flat, and a
 * slow `onReport` (a pipe) slows the workers down instead of queueing reports.
 */
import { NixcacheError } from '../errors.js';
import type { Ed25519Backend } from '../signing/ed25519.js';
import type { PublicKey } from '../signing/keys.js';
import type { StoreOpenSpec } from '../store/open.js';
import { abortError } from './pipeline.js';
import type { PathReport } from './verify-check.js';

/** What a worker is started with (its `workerData`). */
export interface VerifyWorkerInit {
  readonly store: StoreOpenSpec;
  readonly trustedKeys: readonly PublicKey[];
  readonly contents: boolean;
  /** Paths one worker checks at once (to overlap its reads; the CPU work is synchronous). */
  readonly parallelism: number;
  readonly backend?: Ed25519Backend;
}

/** Main thread → worker. */
export interface PathsMessage {
  readonly type: 'paths';
  readonly paths: readonly string[];
}

/** Worker → main thread. */
export type VerifyWorkerMessage =
  | {
      readonly type: 'reports';
      /** The reports as one JSON array: much cheaper to send than a structured clone of each. */
      readonly json: string;
      readonly bytes: number;
    }
  | { readonly type: 'failed'; readonly code?: string; readonly message: string };

export interface VerifyPoolOptions {
  /** Worker threads (at least 1). */
  readonly workers: number;
  readonly init: VerifyWorkerInit;
  readonly signal?: AbortSignal;
  /** Each report, in order of completion; awaited before its worker's slot counts as free. */
  readonly onReport: (report: PathReport) => void | Promise<void>;
  readonly onBytes?: (bytes: number) => void;
}

/** The worker script beside this module: dist/cache, a bundle's cache/ folder, or the sources. */
async function workerEntry(): Promise<URL | undefined> {
  const { existsSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  // Code-split bundles put this module in a chunk at the root of dist/; unbundled it sits beside
  // the worker; a bundle of the CLI (bench/.build) has the worker in cache/ beside its chunks.
  for (const relative of [
    './verify-worker.js',
    './cache/verify-worker.js',
    './cache/verify-worker.mjs',
    '../cache/verify-worker.js',
  ]) {
    const url = new URL(relative, import.meta.url);
    if (url.protocol === 'file:' && existsSync(fileURLToPath(url))) return url;
  }
  const source = new URL('./verify-worker.ts', import.meta.url);
  if (source.protocol !== 'file:' || !existsSync(fileURLToPath(source))) return undefined;
  return bundleFromSources(source);
}

let sourceBundle: Promise<URL | undefined> | undefined;

/**
 * Running from the TypeScript sources (tests, development): Node 20 cannot load a TypeScript
 * worker through tsx, so the worker is bundled from the current sources with esbuild (a
 * development dependency) once per process, into node_modules/.cache so that its dependencies
 * resolve, and removed when the process exits.
 */
function bundleFromSources(source: URL): Promise<URL | undefined> {
  sourceBundle ??= (async () => {
    const { join } = await import('node:path');
    const { readdirSync, rmSync } = await import('node:fs');
    const { fileURLToPath, pathToFileURL } = await import('node:url');
    const { build } = await import('esbuild');
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const parent = join(root, 'node_modules', '.cache', 'nixcache');
    const outdir = join(parent, `verify-worker-${process.pid}`);
    // Bundles of processes that are gone (killed before their exit handler ran) go first.
    let names: string[] = [];
    try {
      names = readdirSync(parent);
    } catch {
      // No bundle made here yet.
    }
    for (const name of names) {
      const pid = Number(/^verify-worker-(\d+)$/.exec(name)?.[1]);
      if (!pid || pid === process.pid || isAlive(pid)) continue;
      rmSync(join(parent, name), { recursive: true, force: true });
    }
    process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
    await build({
      entryPoints: { 'verify-worker': fileURLToPath(source) },
      outdir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      logLevel: 'silent',
    });
    return pathToFileURL(join(outdir, 'verify-worker.mjs'));
  })().catch(() => undefined);
  return sourceBundle;
}

/** True when process `pid` exists (EPERM: it does, someone else's). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when worker threads can run `verifyCache` here (Node, with the worker script present). */
export async function canVerifyOnWorkers(): Promise<boolean> {
  try {
    return (await workerEntry()) !== undefined;
  } catch {
    return false;
  }
}

interface Lane {
  readonly worker: import('node:worker_threads').Worker;
  /** Paths handed to this lane whose reports have not been consumed yet (buffered ones included). */
  owed: number;
  /** Paths waiting to be posted as one batch. */
  batch: string[];
}

/**
 * Checks every path of `source` on `workers` threads; each report goes to `onReport` as it comes.
 * The source is pulled only while some worker has room, so listing stays in step with checking.
 *
 * @throws {NixcacheError} ABORTED when `signal` aborts; UNSUPPORTED when there is no worker script;
 *   whatever a worker fails with (opening the store, an unexpected error) or `onReport` throws.
 */
export async function verifyOnWorkers(
  source: AsyncIterable<string>,
  options: VerifyPoolOptions,
): Promise<void> {
  const { signal, onReport, onBytes } = options;
  signal?.throwIfAborted();
  const entry = await workerEntry();
  if (!entry)
    throw new NixcacheError('UNSUPPORTED', 'worker threads need the verify-worker script beside nixcache');
  const { Worker } = await import('node:worker_threads');
  const count = Math.max(1, Math.floor(options.workers));
  // Batches amortise messages; the window keeps each worker fed while its last batch returns.
  // A check with contents takes long enough that a message's round trip does not matter, and a
  // path queued behind a long check in one worker would wait while another worker idles: a
  // worker gets one only for a free slot (its share of the parallelism), so the next path goes
  // to whichever worker frees one first.
  const batchSize = options.init.contents ? 1 : 32;
  const window = options.init.contents ? options.init.parallelism : 4 * batchSize;

  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (error: unknown): void => {
    failure ??= { error };
    notify();
  };
  const onAbort = (): void => fail(abortError(signal!));
  signal?.addEventListener('abort', onAbort, { once: true });
  // Reports are consumed one at a time, whichever worker sent them.
  let consumed: Promise<void> = Promise.resolve();
  let finished = false;

  const lanes: Lane[] = [];
  for (let i = 0; i < count; i++) {
    const worker = new Worker(entry, {
      workerData: options.init,
      // The worker script is plain JavaScript: no loader of the parent's (tsx under the tests and
      // the bench: 0.2 s of CPU per worker) or other flag is needed.
      execArgv: [],
      // A small young generation: the workers' garbage is short-lived and small, and a large one
      // only adds resident memory (measured: 175 → 116 MB for two workers at 20k narinfos).
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    const lane: Lane = { worker, owed: 0, batch: [] };
    worker.on('message', (m: VerifyWorkerMessage) => {
      if (m.type === 'failed') {
        fail(new NixcacheError((m.code ?? 'ERROR') as 'UNSUPPORTED', m.message));
        return;
      }
      if (m.bytes) onBytes?.(m.bytes);
      const reports = JSON.parse(m.json) as PathReport[];
      consumed = consumed.then(async () => {
        if (failure) return;
        try {
          for (const r of reports) await onReport(r);
        } catch (e) {
          fail(e);
          return;
        }
        lane.owed -= reports.length;
        notify();
      });
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!finished) fail(new NixcacheError('IO', `a verify worker stopped early (exit code ${code})`));
    });
    lanes.push(lane);
  }
  const post = (lane: Lane): void => {
    if (!lane.batch.length) return;
    const message: PathsMessage = { type: 'paths', paths: lane.batch };
    lane.batch = [];
    lane.worker.postMessage(message);
  };
  const roomiest = (): Lane | undefined => {
    let best: Lane | undefined;
    for (const l of lanes) if (l.owed < window && (!best || l.owed < best.owed)) best = l;
    return best;
  };
  const waitForNews = (): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
    });

  const iterator = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    while (!failure) {
      let lane = roomiest();
      while (!lane && !failure) {
        await waitForNews();
        lane = roomiest();
      }
      if (failure || !lane) break;
      const step = await iterator.next();
      if (step.done) {
        exhausted = true;
        break;
      }
      lane.batch.push(step.value);
      lane.owed++;
      // A full batch goes at once; so does any batch while its worker is running short of work.
      if (lane.batch.length >= batchSize || lane.owed - lane.batch.length < batchSize) post(lane);
    }
    for (const lane of lanes) post(lane);
    while (!failure && lanes.some((l) => l.owed > 0)) await waitForNews();
    await consumed;
  } catch (e) {
    fail(e);
  } finally {
    finished = true;
    signal?.removeEventListener('abort', onAbort);
    if (!exhausted) await Promise.resolve(iterator.return?.()).catch(() => undefined);
    await Promise.all(lanes.map((l) => l.worker.terminate()));
  }
  if (failure) throw failure.error;
}
