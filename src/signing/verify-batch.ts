/**
 * Verifying many narinfos (nix-formats.md §5.3-5.4) with the signature checks off the main thread:
 * `verifyNarInfoAsync` over a bounded window, results in input order. Under Node the curve work
 * runs on libuv's thread pool (node:crypto's asynchronous verify), so it scales with the cores
 * while the main thread reads and parses; in browsers it runs on WebCrypto.
 */
import type { NarInfo } from '../narinfo/types.js';
import type { Ed25519Backend } from './ed25519.js';
import { makeKeyring, type NarInfoVerification, type TrustedKeys, verifyNarInfoAsync } from './verify.js';

export interface VerifyNarInfosOptions {
  /**
   * Narinfos whose verification may be pending at once (default 64). Bounds memory for sources
   * of any length; how many signatures sit on the thread pool at once is bounded separately
   * (`setNativeVerifyConcurrency`).
   */
  readonly concurrency?: number;
  readonly backend?: Ed25519Backend | 'webcrypto';
}

/** One narinfo and its verdict, as `verifyNarInfos` yields them. */
export interface NarInfoVerdict<T extends NarInfo = NarInfo> {
  readonly info: T;
  readonly result: NarInfoVerification;
}

/**
 * Verifies a stream of narinfos, keeping up to `concurrency` of them in flight, and yields each
 * with its verdict in input order. The trusted keys are read once.
 *
 * @throws {NixcacheError} BAD_KEY when a trusted key given as text is malformed (before any work).
 * @throws {RangeError} for a concurrency that is not a positive integer.
 * @example
 * for await (const { info, result } of verifyNarInfos(infos, ['cache.nixos.org-1:…'])) {
 *   if (!result.trusted) console.log(info.storePath);
 * }
 */
export async function* verifyNarInfos<T extends NarInfo>(
  infos: Iterable<T> | AsyncIterable<T>,
  trustedKeys: TrustedKeys,
  options: VerifyNarInfosOptions = {},
): AsyncGenerator<NarInfoVerdict<T>> {
  const concurrency = options.concurrency ?? 64;
  if (!(Number.isInteger(concurrency) && concurrency > 0)) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const ring = makeKeyring(trustedKeys);
  const verifyOptions = options.backend === undefined ? {} : { backend: options.backend };
  // A ring buffer of pending verdicts, oldest first.
  const window: Promise<NarInfoVerdict<T>>[] = [];
  let head = 0;
  const verify = async (info: T): Promise<NarInfoVerdict<T>> => ({
    info,
    result: await verifyNarInfoAsync(info, ring, verifyOptions),
  });
  for await (const info of infos) {
    if (window.length - head >= concurrency) {
      const oldest = window[head]!;
      window[head++] = undefined as unknown as Promise<NarInfoVerdict<T>>;
      yield await oldest;
    }
    if (head > 1024 && head * 2 > window.length) {
      window.splice(0, head);
      head = 0;
    }
    const pending = verify(info);
    // A rejection is reported when its turn comes; until then it must not count as unhandled.
    pending.catch(() => {});
    window.push(pending);
  }
  while (head < window.length) yield await window[head++]!;
}
