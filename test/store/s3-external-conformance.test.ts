/**
 * The store conformance suite against an external S3 (MinIO, AWS, R2, Garage) named by
 * NIXCACHE_TEST_S3_URL (see s3-external.test.ts for the variables). Each cache lives under a fresh
 * key prefix that is deleted afterwards; the bucket must exist. Skipped, with a message from
 * s3-external.test.ts, when the variable is unset.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe } from 'vitest';
import { openStore } from '../../src/store/index.js';
import type { S3Backend } from '../../src/store/s3.js';
import { corruptObject, storeConformance } from './conformance.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const external = process.env.NIXCACHE_TEST_S3_URL;

async function backendOf(url: string): Promise<S3Backend> {
  return (await openStore(url, { onWarning: () => {} })).backend as S3Backend;
}

describe.skipIf(!external)('external S3', () => {
  const created: string[] = [];
  afterAll(async () => {
    for (const url of created) {
      const backend = await backendOf(url);
      const keys: string[] = [];
      for await (const k of backend.list('')) keys.push(k);
      for (const k of keys) await backend.delete(k);
    }
  });

  storeConformance(`s3:// (${external})`, () => {
    const q = external!.indexOf('?');
    const base = (q < 0 ? external! : external!.slice(0, q)).replace(/\/+$/, '');
    const query = q < 0 ? '' : external!.slice(q);
    const run = randomBytes(6).toString('hex');
    let n = 0;
    return {
      freshUrl: async () => {
        const url = `${base}/nixcache-conformance-${run}-${n++}${query}`;
        created.push(url);
        return url;
      },
      canList: true,
      corrupt: async (url, key) => corruptObject(await backendOf(url), key),
      remove: async (url, key) => (await backendOf(url)).delete(key),
    };
  });
});
