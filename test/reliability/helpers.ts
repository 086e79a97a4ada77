/**
 * Shared parts of the reliability tests: a sample store with one larger path (so uploads are
 * multipart and bodies big enough to cut), stores over s3rver (direct or through the fault proxy)
 * with fast SDK retries, and the cache invariant checker: every narinfo's NAR is there with its
 * FileSize, and every reference has a narinfo (nix-formats.md §7.2, "never a narinfo without its
 * NAR or references").
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { hashPath } from '../../src/nar/node/hash-path.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { BinaryCacheStore } from '../../src/store/binary-cache.js';
import { FileBackend } from '../../src/store/file.js';
import { narInfoKey, narUrlToKey } from '../../src/store/layout.js';
import { S3Backend } from '../../src/store/s3.js';
import { parseStoreUrl } from '../../src/store/url.js';
import { makeSourcePath } from '../../src/store-path/make.js';
import { parseStorePathBasename } from '../../src/store-path/store-path.js';
import { S3RVER_CREDENTIALS, s3ConfigFor } from '../helpers/s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const MiB = 1024 * 1024;

/** The sample store plus `big`: a directory with a large random file that refers to `data`. */
export interface BigSampleStore extends SampleStore {
  readonly big: string;
}

/** Builds the sample store and a `big-blob` path of `bigMiB` MiB (random, incompressible). */
export async function makeBigSampleStore(dir: string, bigMiB = 12): Promise<BigSampleStore> {
  const sample = await makeSampleStore(dir);
  const scratch = join(dir, '.scratch-big');
  await mkdir(scratch);
  await writeFile(join(scratch, 'blob.bin'), randomBytes(bigMiB * MiB));
  await writeFile(join(scratch, 'uses'), `${sample.data}\n`);
  const { hash } = await hashPath(scratch);
  const big = makeSourcePath('big-blob', hash, [sample.data], { storeDir: sample.storeDir });
  await rename(scratch, join(dir, big.slice(sample.storeDir.length + 1)));
  return { ...sample, big };
}

/** Store URL parameters that make `big` a multipart upload with 5 MiB parts and add `.ls` files. */
export const PUSH_PARAMS =
  'compression=zstd&write-nar-listing=1&multipart-upload=true&multipart-threshold=5242880&multipart-chunk-size=5242880';

/** A BinaryCacheStore on an s3rver bucket (through `endpoint`, which may be the proxy). */
export function s3Store(
  endpoint: string,
  bucket: string,
  prefix: string,
  params = PUSH_PARAMS,
  options: { maxAttempts?: number; warnings?: string[]; idleTimeoutMs?: number } = {},
): BinaryCacheStore {
  const config = parseStoreUrl(`${s3ConfigFor(endpoint, bucket, prefix).url}&${params}`);
  return new BinaryCacheStore(
    config,
    new S3Backend(config, {
      credentials: S3RVER_CREDENTIALS,
      maxAttempts: options.maxAttempts ?? 2,
      ...(options.idleTimeoutMs !== undefined && { idleTimeoutMs: options.idleTimeoutMs }),
      onWarning: (m) => options.warnings?.push(m),
    }),
  );
}

/** A BinaryCacheStore on a directory. */
export function fileStore(dir: string, params = 'compression=zstd&write-nar-listing=1'): BinaryCacheStore {
  const config = parseStoreUrl(`file://${dir}?${params}`);
  return new BinaryCacheStore(config, new FileBackend(config.path!));
}

/** What the invariant checker found. */
export interface InvariantReport {
  readonly narinfos: number;
  readonly problems: readonly string[];
}

/**
 * Checks the cache invariant over every narinfo in the store: it parses, its NAR object exists
 * with exactly FileSize bytes, and each reference (other than itself) has a narinfo.
 */
export async function checkInvariant(store: BinaryCacheStore): Promise<InvariantReport> {
  const problems: string[] = [];
  let narinfos = 0;
  for await (const hash of store.listNarInfos()) {
    narinfos++;
    const key = narInfoKey(hash);
    const bytes = await store.getFile(key);
    if (!bytes) {
      problems.push(`${key}: listed but unreadable`);
      continue;
    }
    let info: ReturnType<typeof parseNarInfo>;
    try {
      info = parseNarInfo(new TextDecoder().decode(bytes), { source: key });
    } catch (e) {
      problems.push(`${key}: does not parse: ${(e as Error).message}`);
      continue;
    }
    const nar = await store.backend.head(narUrlToKey(info.url).key);
    if (!nar) problems.push(`${info.storePath}: NAR ${info.url} is missing`);
    else if (info.fileSize !== undefined && nar.size !== info.fileSize)
      problems.push(
        `${info.storePath}: NAR ${info.url} has ${nar.size} bytes, FileSize says ${info.fileSize}`,
      );
    for (const ref of info.references) {
      const sp = parseStorePathBasename(ref, store.storeDir);
      if (sp.hash === hash) continue;
      if (!(await store.hasNarInfo(sp.hash)))
        problems.push(`${info.storePath}: reference ${ref} has no narinfo`);
    }
  }
  return { narinfos, problems };
}
