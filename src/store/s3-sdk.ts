/**
 * The AWS SDK, loaded on first use. Loading `@aws-sdk/client-s3` (and `@aws-sdk/lib-storage`)
 * costs about 150 ms of CPU, more than the rest of a CLI run's start; a store on an `endpoint=`
 * with credentials in the environment sends its reads, small writes and listings directly
 * (`s3-direct.ts`) and may never need it.
 *
 * The driver awaits `loadS3Sdk()` / `loadS3Upload()` (a dynamic `import()`, which bundlers follow
 * and include) before it uses the SDK. `s3Sdk()` also loads synchronously when nothing did yet (a
 * `require`: the package publishes one CommonJS build and no `exports` map, so it is the same
 * module either way), for `S3Backend.client`, which is synchronous.
 */
import { createRequire } from 'node:module';

type ClientS3 = typeof import('@aws-sdk/client-s3');
type LibStorage = typeof import('@aws-sdk/lib-storage');

let clientS3: ClientS3 | undefined;
let clientS3Loading: Promise<ClientS3> | undefined;
let libStorageLoading: Promise<LibStorage> | undefined;

/** Loads `@aws-sdk/client-s3` (once). */
export function loadS3Sdk(): Promise<ClientS3> {
  clientS3Loading ??= import('@aws-sdk/client-s3').then((m) => {
    clientS3 ??= m as ClientS3;
    return clientS3;
  });
  return clientS3Loading;
}

/** `@aws-sdk/client-s3`: as loaded by {@link loadS3Sdk}, or required now. */
export function s3Sdk(): ClientS3 {
  clientS3 ??= createRequire(import.meta.url)('@aws-sdk/client-s3') as ClientS3;
  return clientS3;
}

/** Loads `@aws-sdk/lib-storage` (multipart uploads, once). */
export function loadS3Upload(): Promise<LibStorage> {
  libStorageLoading ??= import('@aws-sdk/lib-storage') as Promise<LibStorage>;
  return libStorageLoading;
}
