import { afterAll, beforeAll } from 'vitest';
import { openStore } from '../../src/store/index.js';
import type { S3Backend } from '../../src/store/s3.js';
import { type S3rverHandle, s3ConfigFor, startS3rver } from '../helpers/s3rver.js';
import { corruptObject, storeConformance } from './conformance.js';

let s3: S3rverHandle;
beforeAll(async () => {
  s3 = await startS3rver();
  Object.assign(process.env, s3ConfigFor(s3.endpoint, 'x').env, {
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '1',
  });
});
afterAll(async () => {
  await s3?.stop();
});

async function backendOf(url: string): Promise<S3Backend> {
  return (await openStore(url, { onWarning: () => {} })).backend as S3Backend;
}

storeConformance('s3:// (s3rver)', () => {
  let n = 0;
  return {
    freshUrl: async () => {
      // Half the caches live under a key prefix, as s3://bucket/prefix allows.
      const i = n++;
      const url = s3ConfigFor(s3.endpoint, `cache-${i}`, i % 2 ? 'some/prefix' : '').url;
      await (await backendOf(url)).ensureBucket();
      return url;
    },
    canList: true,
    corrupt: async (url, key) => corruptObject(await backendOf(url), key),
    remove: async (url, key) => (await backendOf(url)).delete(key),
  };
});
