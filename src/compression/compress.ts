/**
 * `compress` and `decompress`: streaming NAR (de)compression for the methods a binary cache uses
 * (nix-formats.md §7.1). Each codec lives in its own file and is imported on first use, so importing
 * this module loads no codec and no `node:*` module.
 */
import { NixcacheError } from '../errors.js';
import { type ByteSource, toAsyncIterable } from '../internal/iter.js';
import { type Codec, OutputLimitExceeded } from './codec.js';
import {
  COMPRESSION_LEVELS,
  isCompressionMethod,
  isSupportedCompressionMethod,
  SUPPORTED_COMPRESSION_METHODS,
  type SupportedCompressionMethod,
} from './registry.js';

/** Options of {@link compress}. */
export interface CompressOptions {
  /**
   * Method-specific level; omitted means the library default that Nix also uses
   * (xz 6, zstd 3, bzip2 9, br 11, gzip 6). Ranges: see `COMPRESSION_LEVELS`.
   */
  readonly level?: number;
  /** xz only: liblzma encoder threads (default 1; 0 means one per CPU). Other methods ignore it. */
  readonly threads?: number;
  /** Stops the stream with a `NixcacheError` of code `ABORTED`. */
  readonly signal?: AbortSignal;
}

/** Options of {@link decompress}. */
export interface DecompressOptions {
  /** Stops the stream with a `NixcacheError` of code `ABORTED`. */
  readonly signal?: AbortSignal;
  /**
   * Most bytes the decompressed stream may have (e.g. a narinfo's NarSize). Going past it fails
   * with `TOO_LARGE` as soon as the codec has produced more, without decoding the rest: a
   * small file that expands to gigabytes costs at most about one codec block of memory beyond
   * this. Default: no limit (memory stays bounded anyway; the output is only as long as it is).
   */
  readonly maxOutputBytes?: number;
}

const loaders: Record<SupportedCompressionMethod, () => Promise<Codec>> = {
  none: async () => (await import('./none.js')).noneCodec,
  xz: async () => (await import('./xz.js')).xzCodec,
  zstd: async () => (await import('./zstd.js')).zstdCodec,
  bzip2: async () => (await import('./bzip2.js')).bzip2Codec,
  br: async () => (await import('./brotli.js')).brotliCodec,
  gzip: async () => (await import('./gzip.js')).gzipCodec,
};

function checkMethod(method: string): SupportedCompressionMethod {
  if (isSupportedCompressionMethod(method)) return method;
  if (isCompressionMethod(method)) {
    throw new NixcacheError(
      'UNSUPPORTED',
      `compression method '${method}' is known to Nix but not implemented by nixcache (supported: ${SUPPORTED_COMPRESSION_METHODS.join(', ')})`,
      { method, expected: SUPPORTED_COMPRESSION_METHODS.join(', '), actual: method },
    );
  }
  throw new NixcacheError('BAD_ARGUMENT', `unknown compression method '${method}'`, {
    field: 'compression',
    method,
    actual: method,
  });
}

function abortError(method: string, operation: string, signal: AbortSignal): NixcacheError {
  return new NixcacheError(
    'ABORTED',
    `${method} ${operation} aborted`,
    { method, operation },
    { cause: signal.reason },
  );
}

/**
 * Runs one codec direction with what every method shares: normalised input, abort checks between
 * chunks, errors of the source passed through untouched, and codec failures mapped to
 * `COMPRESSION` errors that name the method.
 */
async function* run(
  method: SupportedCompressionMethod,
  operation: 'compress' | 'decompress',
  source: ByteSource,
  signal: AbortSignal | undefined,
  start: (codec: Codec, input: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>,
  maxOutputBytes = Number.POSITIVE_INFINITY,
): AsyncGenerator<Uint8Array> {
  if (signal?.aborted) throw abortError(method, operation, signal);
  const codec = await loaders[method]();
  let inputBytes = 0;
  let sourceFailure: { error: unknown } | undefined;
  async function* input(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of toAsyncIterable(source)) {
        if (signal?.aborted) throw abortError(method, operation, signal);
        inputBytes += chunk.length;
        yield chunk;
      }
    } catch (error) {
      sourceFailure = { error };
      throw error;
    }
  }
  let outputBytes = 0;
  try {
    for await (const chunk of start(codec, input())) {
      if (signal?.aborted) throw abortError(method, operation, signal);
      outputBytes += chunk.length;
      if (outputBytes > maxOutputBytes) throw new OutputLimitExceeded(maxOutputBytes);
      yield chunk;
    }
  } catch (error) {
    if (sourceFailure) throw sourceFailure.error;
    if (error instanceof NixcacheError) throw error;
    if (error instanceof OutputLimitExceeded) {
      throw new NixcacheError(
        'TOO_LARGE',
        `${method} ${operation}: the output exceeds the limit of ${error.limit} bytes`,
        {
          method,
          operation,
          offset: inputBytes,
          limit: error.limit,
          expected: `at most ${error.limit} bytes`,
        },
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new NixcacheError(
      'COMPRESSION',
      `${method} ${operation} failed: ${message}`,
      { method, operation, offset: inputBytes },
      { cause: error },
    );
  }
  if (operation === 'decompress' && method !== 'none' && inputBytes === 0) {
    throw new NixcacheError('COMPRESSION', `${method} decompress failed: the input is empty`, {
      method,
      operation,
      offset: 0,
    });
  }
}

/**
 * Compresses a byte stream with one of the methods Nix uses for NARs. Streaming: memory stays
 * bounded by the codec's window, whatever the input size.
 *
 * @param method `none`, `xz`, `zstd`, `bzip2`, `br` or `gzip`.
 * @throws NixcacheError `UNSUPPORTED` (at call time) for a method Nix knows that nixcache does not
 *   implement (lz4, lzip, …); `BAD_ARGUMENT` for an unknown method or a level out of range;
 *   while iterating, `MISSING_DEPENDENCY` when the codec's npm package is not installed,
 *   `COMPRESSION` when the codec fails, `ABORTED` when `signal` fires. Errors of `source` pass
 *   through unchanged.
 * @example
 * import { compress, narFileExtension } from 'nixcache/compression';
 * const xzChunks = compress('xz', narChunks, { level: 6 });
 * const url = `nar/${fileHash}.nar${narFileExtension('xz')}`;
 */
export function compress(
  method: string,
  source: ByteSource,
  options: CompressOptions = {},
): AsyncIterable<Uint8Array> {
  const checked = checkMethod(method);
  const range = COMPRESSION_LEVELS[checked];
  const level = options.level ?? range.default;
  if (checked !== 'none' && (!Number.isInteger(level) || level < range.min || level > range.max)) {
    throw new NixcacheError(
      'BAD_ARGUMENT',
      `${checked} compression level must be an integer from ${range.min} to ${range.max}, got ${level}`,
      { field: 'level', method: checked, expected: `${range.min}..${range.max}`, actual: String(level) },
    );
  }
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 0) {
    throw new NixcacheError('BAD_ARGUMENT', `threads must be a non-negative integer, got ${threads}`, {
      field: 'threads',
      actual: String(threads),
    });
  }
  return run(checked, 'compress', source, options.signal, (codec, input) =>
    codec.compress(input, { level, threads }),
  );
}

/** Inputs up to this size get xz preset 4 when no level is given (see {@link compressBytes}). */
const XZ_SMALL_INPUT = 1024 * 1024;

/**
 * The default level for a small input, where it differs from the method's default: xz preset 6
 * sizes its match finder for an 8 MiB dictionary and zeroes a 16 MiB hash table for every
 * stream (about 2 ms of CPU per NAR, most of the cost of compressing a few KiB); preset 4's
 * 4 MiB dictionary still covers any input up to 1 MiB, at half the set-up (measured on 600
 * small paths: 31% less CPU, output 1.2% larger). The output is ordinary .xz either way.
 */
function smallInputLevel(method: SupportedCompressionMethod, size: number): number | undefined {
  return method === 'xz' && size <= XZ_SMALL_INPUT ? 4 : undefined;
}

/**
 * Compresses a whole input held in memory (e.g. a small NAR): the same format as
 * {@link compress}, with one codec call instead of a stream where the codec has one (xz, zstd).
 * Without an explicit `level`, xz inputs up to 1 MiB use preset 4 rather than 6 (the same
 * effective dictionary for such an input, a third less CPU).
 *
 * @throws NixcacheError as {@link compress} (`BAD_ARGUMENT`, `UNSUPPORTED`, `MISSING_DEPENDENCY`,
 *   `COMPRESSION`, `ABORTED`).
 * @example const xz = await compressBytes('xz', narBytes);
 */
export async function compressBytes(
  method: string,
  input: Uint8Array,
  options: CompressOptions = {},
): Promise<Uint8Array> {
  const checked = checkMethod(method);
  const codec = await loaders[checked]();
  if (!codec.compressBytes) {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const c of compress(method, [input], options)) {
      chunks.push(c);
      size += c.length;
    }
    if (chunks.length === 1) return chunks[0]!;
    const out = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
  // Validates the level and threads exactly as the streaming call does (nothing runs yet).
  compress(method, [], options);
  const range = COMPRESSION_LEVELS[checked];
  const signal = options.signal;
  if (signal?.aborted) throw abortError(checked, 'compress', signal);
  try {
    const out = await codec.compressBytes(input, {
      level: options.level ?? smallInputLevel(checked, input.length) ?? range.default,
      threads: options.threads ?? 1,
    });
    if (signal?.aborted) throw abortError(checked, 'compress', signal);
    return out;
  } catch (error) {
    if (error instanceof NixcacheError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new NixcacheError(
      'COMPRESSION',
      `${checked} compress failed: ${message}`,
      { method: checked, operation: 'compress', offset: 0 },
      { cause: error },
    );
  }
}

/**
 * Gets what {@link compressBytes} of `method` needs ready ahead of the first input (for xz: the
 * worker thread that encodes small inputs), so that a caller can overlap it with other work.
 * Never fails (a problem shows with the first input). The promise settles once the worker is
 * started, not loaded: a caller about to block its thread (a synchronous read) awaits it so
 * that the worker loads meanwhile.
 *
 * @example await warmUpCompressBytes(store.config.compression)
 */
export async function warmUpCompressBytes(method: string): Promise<void> {
  if (method === 'xz') {
    await import('./xz-worker.js').then(
      (m) => m.startXzWorker(),
      () => {},
    );
  }
}

/**
 * Decompresses a byte stream written with one of the methods Nix uses for NARs (as named in a
 * narinfo's `Compression:` field). Streaming with bounded memory; concatenated streams/frames/
 * members are decoded as one, as Nix does.
 *
 * @param method `none`, `xz`, `zstd`, `bzip2`, `br` or `gzip`.
 * @throws NixcacheError `UNSUPPORTED` / `BAD_ARGUMENT` (at call time) as for {@link compress};
 *   while iterating, `COMPRESSION` for corrupt, truncated or empty input (naming the method),
 *   `TOO_LARGE` past `maxOutputBytes`, `MISSING_DEPENDENCY`, or `ABORTED`. Errors of `source` pass through unchanged.
 * @example
 * import { decompress } from 'nixcache/compression';
 * for await (const chunk of decompress(narInfo.compression, response.body)) hasher.update(chunk);
 */
export function decompress(
  method: string,
  source: ByteSource,
  options: DecompressOptions = {},
): AsyncIterable<Uint8Array> {
  const checked = checkMethod(method);
  const max = options.maxOutputBytes ?? Number.POSITIVE_INFINITY;
  if (!(max >= 0)) {
    throw new NixcacheError('BAD_ARGUMENT', `maxOutputBytes must be a non-negative number, got ${max}`, {
      field: 'maxOutputBytes',
      actual: String(max),
    });
  }
  return run(
    checked,
    'decompress',
    source,
    options.signal,
    (codec, input) => codec.decompress(input, { maxOutputBytes: max }),
    max,
  );
}
