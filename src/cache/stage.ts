/**
 * Staging a NAR for upload (nix-formats.md §7.2 step 2): one pass over the NAR stream that hashes
 * it (NarHash/NarSize), validates it, scans it for references, builds its `.ls` listing, and
 * compresses it into a temporary file while hashing the compressed bytes (FileHash/FileSize).
 * The NAR's key depends on FileHash, so it is only known once compression is complete; the temp
 * file keeps memory bounded whatever the NAR size.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compress } from '../compression/compress.js';
import type { NixHash } from '../hash/hash.js';
import { createHasher } from '../hash/hasher.js';
import type { ByteSource } from '../internal/iter.js';
import { toAsyncIterable } from '../internal/iter.js';
import { formatNarListing, NarListingBuilder } from '../nar/listing.js';
import { NarDecoder } from '../nar/read.js';
import { createReferenceScanner } from '../nar/references.js';
import type { CompressionMethod } from '../narinfo/types.js';
import type { ContentAddress } from '../store-path/content-address.js';
import { ContentAddressHasher } from './content-address.js';
import { RootFileHasher } from './root-file-hash.js';

export interface StageOptions {
  readonly compression: CompressionMethod;
  readonly compressionLevel?: number;
  /** Hash parts to look for in the NAR (Nix's reference scanner). */
  readonly candidates?: Iterable<string>;
  /** Build the `.ls` listing too. */
  readonly listing?: boolean;
  /** Hash what this content address covers too (checked by the caller: `contentAddressHash`). */
  readonly contentAddress?: ContentAddress;
  readonly signal?: AbortSignal;
}

/** A compressed NAR waiting in a temporary file. Call `dispose` when done with it. */
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
 * caller needs to know a path's references before it decides to publish it.
 *
 * @throws {NixcacheError} IO, ABORTED.
 */
export async function scanNar(
  nar: ByteSource,
  options: { readonly candidates: Iterable<string>; readonly signal?: AbortSignal },
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
  const dir = await mkdtemp(join(tmpdir(), 'nixcache-stage-'));
  const file = join(dir, 'nar');
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
    let fileSize = 0;
    const handle = await open(file, 'wx', 0o600);
    try {
      const compressed = compress(options.compression, tap(), {
        ...(options.compressionLevel !== undefined && { level: options.compressionLevel }),
        ...(options.signal && { signal: options.signal }),
      });
      for await (const chunk of compressed) {
        fileHasher.update(chunk);
        fileSize += chunk.length;
        await handle.write(chunk);
      }
    } finally {
      await handle.close();
    }
    const rootFileHash = rootFile.hash();
    const narHash: NixHash = { algorithm: 'sha256', digest: narHasher.digest() };
    const contentAddressHash = caHasher?.result(narHash);
    return {
      narHash,
      narSize,
      fileHash: { algorithm: 'sha256', digest: fileHasher.digest() },
      fileSize,
      references: scanner?.result() ?? new Set(),
      ...(listing && { listing: formatNarListing(listing.listing) }),
      ...(rootFileHash && { rootFileHash }),
      ...(contentAddressHash && { contentAddressHash }),
      body: () => createReadStream(file, { highWaterMark: 1 << 20 }),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
