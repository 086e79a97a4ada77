/**
 * Vitest global setup: unpacks the real-world corpus that the repository carries as
 * `fixtures/corpus/corpus.nar.xz` (made by fixtures/corpus/pack.ts) into `.cache/corpus/`, with
 * nixcache's own xz decoder and NAR restorer, so every test reads its data from the repository. The unpacked copy is
 * reused while a stamp file holds the archive's sha256.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decompress } from '../../src/compression/compress.js';
import { restorePath } from '../../src/nar/node/restore.js';
import { CORPUS_ARCHIVE, corpusDir, repoRoot } from './env.js';

export default async function setup(): Promise<void> {
  const digest = createHash('sha256').update(readFileSync(CORPUS_ARCHIVE)).digest('hex');
  const stamp = join(corpusDir, '.archive-sha256');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return;
  const cache = join(repoRoot, '.cache');
  await mkdir(cache, { recursive: true });
  const staging = join(cache, `corpus.${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await restorePath(decompress('xz', createReadStream(CORPUS_ARCHIVE)), staging);
  await writeFile(join(staging, '.archive-sha256'), digest);
  await rm(corpusDir, { recursive: true, force: true });
  await rename(staging, corpusDir);
}
