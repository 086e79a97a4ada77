import { mkdirSync, mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { startHttpCache, type TestHttpServer } from '../helpers/http-server.js';
import { storeConformance } from './conformance.js';

const servers: TestHttpServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

storeConformance('http://', () => {
  const root = mkdtempSync(join(tmpdir(), 'nixcache-http-store-'));
  const roots = new Map<string, string>();
  return {
    freshUrl: async () => {
      const dir = join(root, `cache-${roots.size}`);
      mkdirSync(dir);
      const server = await startHttpCache(dir);
      servers.push(server);
      roots.set(server.url, dir);
      return server.url;
    },
    canList: false,
    corrupt: async (url, key) => {
      const path = join(roots.get(url.replace(/\?.*$/, ''))!, key);
      const bytes = await readFile(path);
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
      await writeFile(path, bytes);
    },
    remove: async (url, key) => rm(join(roots.get(url.replace(/\?.*$/, ''))!, key)),
  };
});
