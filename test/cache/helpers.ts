/**
 * Hand-made binary caches for the cache-operation tests: a source cache pushed from the sample
 * store (plus a text path, as `builtins.toFile` makes), and tools to forge narinfos and NARs in
 * a file:// cache the way an attacker or a broken writer would.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { pushPaths } from '../../src/cache/index.js';
import { hashBytes } from '../../src/hash/hasher.js';
import { collectBytes } from '../../src/internal/iter.js';
import { writeNar } from '../../src/nar/write.js';
import { formatNarInfo } from '../../src/narinfo/format.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import type { NarInfo } from '../../src/narinfo/types.js';
import { openStore } from '../../src/store/index.js';
import { narKey } from '../../src/store/layout.js';
import { makeTextPath } from '../../src/store-path/make.js';

export const hashPartOf = (p: string) => p.slice(p.lastIndexOf('/') + 1, p.lastIndexOf('/') + 33);

/** The sample store plus `note`, a text path (`builtins.toFile "note.txt" …`). */
export interface SourceStore extends SampleStore {
  readonly note: string;
}

export async function makeSourceStore(dir: string): Promise<SourceStore> {
  await mkdir(dir, { recursive: true });
  const sample = await makeSampleStore(dir);
  const contents = 'a note from a text path\n';
  const note = makeTextPath('note.txt', contents);
  await writeFile(join(dir, note.slice('/nix/store/'.length)), contents);
  return { ...sample, note };
}

/** Pushes `paths` unsigned into a new uncompressed file:// cache at `dir`; returns its URL. */
export async function pushUnsigned(
  store: SourceStore,
  dir: string,
  paths: readonly string[],
): Promise<string> {
  const url = `file://${dir}?compression=none`;
  const cache = await openStore(url);
  const result = await pushPaths(cache, paths, { storeDir: store.dir });
  if (result.failed.length) throw result.failed[0]!.error;
  return url;
}

export async function readNarInfoFile(cacheDir: string, path: string): Promise<NarInfo> {
  return parseNarInfo(await readFile(join(cacheDir, `${hashPartOf(path)}.narinfo`), 'utf8'));
}

export async function writeNarInfoFile(cacheDir: string, info: NarInfo): Promise<void> {
  const { original: _, ...fields } = info;
  await writeFile(join(cacheDir, `${hashPartOf(info.storePath)}.narinfo`), formatNarInfo(fields));
}

/**
 * Swaps the NAR of `path` in an uncompressed file:// cache for a single file with `contents`, and
 * makes NarHash, NarSize, FileHash, FileSize and URL match it; the CA line and the rest stay.
 * Signatures are dropped (they would no longer verify): the forgery relies on the CA claim.
 */
export async function swapNar(cacheDir: string, path: string, contents: string): Promise<NarInfo> {
  const info = await readNarInfoFile(cacheDir, path);
  const nar = await collectBytes(
    writeNar([{ path: '', type: 'regular', contents: new TextEncoder().encode(contents) }]),
  );
  const digest = hashBytes('sha256', nar);
  const url = narKey(digest, 'none');
  await writeFile(join(cacheDir, url), nar);
  const { original: _, ...fields } = info;
  const forged: NarInfo = {
    ...fields,
    url,
    compression: 'none',
    fileHash: { algorithm: 'sha256', digest },
    fileSize: nar.length,
    narHash: { algorithm: 'sha256', digest },
    narSize: nar.length,
    sigs: [],
  };
  await writeNarInfoFile(cacheDir, forged);
  return forged;
}
