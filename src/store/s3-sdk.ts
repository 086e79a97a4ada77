/**
 * The AWS SDK, loaded on first use. Loading `@aws-sdk/client-s3` (and `@aws-sdk/lib-storage`)
 * costs about 150 ms of CPU, more than the rest of a CLI run's start; a store on an `endpoint=`
 * with credentials in the environment sends its reads, small writes and listings directly
 * (`s3-direct.ts`) and may never need it. Both packages publish one CommonJS build (no
 * `exports` map), so this `require` returns the same module objects as an `import` elsewhere.
 */
import { createRequire } from 'node:module';

type ClientS3 = typeof import('@aws-sdk/client-s3');
type LibStorage = typeof import('@aws-sdk/lib-storage');

let clientS3: ClientS3 | undefined;
let libStorage: LibStorage | undefined;

/** `@aws-sdk/client-s3`, loaded on first call. */
export function s3Sdk(): ClientS3 {
  clientS3 ??= createRequire(import.meta.url)('@aws-sdk/client-s3') as ClientS3;
  return clientS3;
}

/** `@aws-sdk/lib-storage` (multipart uploads), loaded on first call. */
export function s3Upload(): LibStorage {
  libStorage ??= createRequire(import.meta.url)('@aws-sdk/lib-storage') as LibStorage;
  return libStorage;
}
