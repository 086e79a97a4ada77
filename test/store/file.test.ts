import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeConformance } from './conformance.js';

function dirOf(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/\?.*$/, '');
}

storeConformance('file://', () => {
  const root = mkdtempSync(join(tmpdir(), 'nixcache-file-store-'));
  let n = 0;
  return {
    freshUrl: async () => `file://${root}/cache-${n++}`,
    canList: true,
    corrupt: async (url, key) => {
      const path = join(dirOf(url), key);
      const bytes = await readFile(path);
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
      await writeFile(path, bytes);
    },
    remove: async (url, key) => rm(join(dirOf(url), key)),
  };
});
