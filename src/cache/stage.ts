/**
 * Staging a NAR for upload (nix-formats.md §7.2 step 2): one pass over the NAR stream that hashes
 * it (NarHash/NarSize), validates it, scans it for references, builds its `.ls` listing, and
 * compresses it while hashing the compressed bytes (FileHash/FileSize). The NAR's key depends on
 * FileHash, so it is only known once compression is complete: the compressed bytes are kept in
 * memory up to `memoryLimit` (most store paths of a system closure are a few KiB), and spill to
 * a temporary file beyond it, so memory stays bounded whatever the NAR size. Spill files go into
 * the caller's `tempDir` (one directory for a whole push) or a directory of their own. Nothing is
 * fsynced: a staged file is only read back within the same process, and what makes an upload
 * durable is the narinfo being written last.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdtemp, open, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compress, compressBytes } from '../compression/compress.js';
import type { NixHash } from '../hash/hash.js';
import { createHasher } from '../hash/hasher.js';
import type { ByteSource } from '../internal/iter.js';
import { toAsyncIterable } from '../internal/iter.js';
import { formatNarListing, NarListingBuilder } from '../nar/listing.js';
import { NarDecoder } from '../nar/read.js';
import { createReferenceScanner, type ReferenceCandidates } from '../nar/references.js';
import type { CompressionMethod } from '../narinfo/types.js';
import type { ContentAddress } from '../store-path/content-address.js';
import { ContentAddressHasher } from './content-address.js';
import { RootFileHasher } from './root-file-hash.js';

export interface StageOptions {
  readonly compression: CompressionMethod;
  readonly compressionLevel?: number;
  /** Hash parts to look for in the NAR (Nix's reference scanner). */
  readonly candidates?: Iterable<string> | ReferenceCandidates;
  /** Build the `.ls` listing too. */
  readonly listing?: boolean;
  /** Hash what this content address covers too (checked by the caller: `contentAddressHash`). */
  readonly contentAddress?: ContentAddress;
  /**
   * A NAR up to this size is read whole and compressed in one call, and compressed bytes up to
   * this size stay in memory rather than in a temporary file (default
   * {@link STAGE_MEMORY_LIMIT}; 0 streams everything through a file).
   */
  readonly memoryLimit?: number;
  /**
   * An existing directory for spill files, or a function that makes one on first use (e.g. one
   * directory for a whole push); default: a fresh directory per staged NAR, removed by `dispose`.
   */
  readonly tempDir?: string | (() => Promise<string>);
  readonly signal?: AbortSignal;
}

/** Default `memoryLimit` of {@link stageNar}: 1 MiB. */
export const STAGE_MEMORY_LIMIT = 1024 * 1024;

let spillCounter = 0;

/** A compressed NAR waiting in memory or in a temporary file. Call `dispose` when done with it. */
export interface StagedNar {
  readonly narHash: NixHash;
  readonly narSize: number;
  readonly fileHash: NixHash;
  readonly fileSize: number;
  /** Candidate hash parts found in the NAR (when candidates were given). */
  readonly references: ReadonlySet<string>;
  /** The `.ls` document text (when asked for). */
  readonly listing?: string;
  /** sha256 of the root's bytes when the NAR is a single regular file (for flat and text CAs). */
  readonly rootFileHash?: NixHash;
  /**
   * With `contentAddress`: the hash of what it covers, computed from the NAR (undefined when the
   * claim cannot be computed, e.g. a flat claim on a directory).
   */
  readonly contentAddressHash?: NixHash;
  /** Streams the compressed bytes again (for each upload attempt). */
  body(): AsyncIterable<Uint8Array>;
  /** The compressed bytes when they are held in memory (below `memoryLimit`), else undefined. */
  bytes(): Uint8Array | undefined;
  dispose(): Promise<void>;
}

/** What `scanNar` finds in one pass over a NAR. */
export interface ScannedNar {
  readonly narHash: NixHash;
  readonly narSize: number;
  /** Candidate hash parts found in the NAR. */
  readonly references: ReadonlySet<string>;
}

/**
 * Hashes a NAR stream and scans it for references, without compressing or keeping it: what a
 * caller needs to know a path's references before it decides to publish it. It keeps no chunk
 * once it asks for the next (a `dumpPath { reuseChunks }` source is fine).
 *
 * @throws {NixcacheError} IO, ABORTED.
 */
export async function scanNar(
  nar: ByteSource,
  options: { readonly candidates: Iterable<string> | ReferenceCandidates; readonly signal?: AbortSignal },
): Promise<ScannedNar> {
  const hasher = createHasher('sha256');
  const scanner = createReferenceScanner(options.candidates);
  let narSize = 0;
  for await (const chunk of toAsyncIterable(nar)) {
    options.signal?.throwIfAborted();
    hasher.update(chunk);
    scanner.update(chunk);
    narSize += chunk.length;
  }
  return { narHash: { algorithm: 'sha256', digest: hasher.digest() }, narSize, references: scanner.result() };
}

/**
 * Runs a NAR stream through validation, hashing, reference scanning, listing and compression.
 *
 * @throws {NixcacheError} BAD_NAR for an invalid NAR, COMPRESSION, IO, ABORTED.
 */
export async function stageNar(nar: ByteSource, options: StageOptions): Promise<StagedNar> {
  const spill = new Spill(options.memoryLimit ?? STAGE_MEMORY_LIMIT, options.tempDir);
  try {
    const narHasher = createHasher('sha256');
    const fileHasher = createHasher('sha256');
    const scanner = options.candidates ? createReferenceScanner(options.candidates) : undefined;
    const listing = options.listing ? new NarListingBuilder() : undefined;
    const rootFile = new RootFileHasher('sha256', listing);
    const caHasher =
      options.contentAddress && new ContentAddressHasher(options.contentAddress, 'sha256', rootFile);
    const decoder = new NarDecoder(caHasher ?? rootFile);
    let narSize = 0;
    async function* tap(): AsyncGenerator<Uint8Array> {
      for await (const chunk of toAsyncIterable(nar)) {
        narHasher.update(chunk);
        scanner?.update(chunk);
        caHasher?.update(chunk);
        decoder.write(chunk);
        narSize += chunk.length;
        yield chunk;
      }
      decoder.end();
    }
    const compressOptions = {
      ...(options.compressionLevel !== undefined && { level: options.compressionLevel }),
      ...(options.signal && { signal: options.signal }),
    };
    // A NAR up to the memory limit is read whole and compressed in one codec call (most paths of
    // a system closure are a few KiB: a stream per path costs more than compressing it).
    const iterator = tap()[Symbol.asyncIterator]();
    const head: Uint8Array[] = [];
    let headSize = 0;
    let whole = false;
    while (headSize <= spill.limit) {
      const step = await iterator.next();
      if (step.done) {
        whole = true;
        break;
      }
      head.push(step.value);
      headSize += step.value.length;
    }
    if (whole) {
      const input = head.length === 1 ? head[0]! : Buffer.concat(head, headSize);
      head.length = 0;
      const out = await compressBytes(options.compression, input, compressOptions);
      fileHasher.update(out);
      await spill.write(out);
    } else {
      async function* all(): AsyncGenerator<Uint8Array> {
        yield* head.splice(0);
        for (;;) {
          const step = await iterator.next();
          if (step.done) return;
          yield step.value;
        }
      }
      for await (const chunk of compress(options.compression, all(), compressOptions)) {
        fileHasher.update(chunk);
        await spill.write(chunk);
      }
    }
    await spill.end();
    const rootFileHash = rootFile.hash();
    const narHash: NixHash = { algorithm: 'sha256', digest: narHasher.digest() };
    const contentAddressHash = caHasher?.result(narHash);
    return {
      narHash,
      narSize,
      fileHash: { algorithm: 'sha256', digest: fileHasher.digest() },
      fileSize: spill.size,
      references: scanner?.result() ?? new Set(),
      ...(listing && { listing: formatNarListing(listing.listing) }),
      ...(rootFileHash && { rootFileHash }),
      ...(contentAddressHash && { contentAddressHash }),
      body: () => spill.body(),
      bytes: () => spill.bytes(),
      dispose: () => spill.dispose(),
    };
  } catch (e) {
    await spill.dispose();
    throw e;
  }
}

/** Compressed bytes in memory up to a limit, then in a temporary file. */
class Spill {
  size = 0;
  #chunks: Uint8Array[] = [];
  #file: string | undefined;
  #ownDir: string | undefined;
  #handle: FileHandle | undefined;

  constructor(
    readonly limit: number,
    readonly dir: string | (() => Promise<string>) | undefined,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.size += chunk.length;
    if (this.#file === undefined && this.size <= this.limit) {
      this.#chunks.push(chunk);
      return;
    }
    if (this.#file === undefined) {
      let dir: string;
      if (this.dir === undefined) {
        this.#ownDir = await mkdtemp(join(tmpdir(), 'nixcache-stage-'));
        dir = this.#ownDir;
      } else {
        dir = typeof this.dir === 'string' ? this.dir : await this.dir();
      }
      this.#file = join(dir, `nar-${process.pid}-${spillCounter++}`);
      this.#handle = await open(this.#file, 'wx', 0o600);
      for (const c of this.#chunks.splice(0)) await this.#handle.write(c);
    }
    await this.#handle!.write(chunk);
  }

  async end(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  bytes(): Uint8Array | undefined {
    if (this.#file !== undefined) return undefined;
    // One buffer: a backend writes or sends it in one call.
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.size)];
    return this.#chunks[0];
  }

  async *body(): AsyncGenerator<Uint8Array> {
    const bytes = this.bytes();
    if (bytes) {
      yield bytes;
      return;
    }
    yield* createReadStream(this.#file!, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
  }

  async dispose(): Promise<void> {
    this.#chunks = [];
    await this.end().catch(() => {});
    if (this.#ownDir !== undefined) await rm(this.#ownDir, { recursive: true, force: true });
    else if (this.#file !== undefined) await unlink(this.#file).catch(() => {});
    this.#file = undefined;
  }
}
