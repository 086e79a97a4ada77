/**
 * `nixcache/cache`: the cache workflow over any store — init, push, verify, copy, sign.
 */
export {
  type CopyAllOptions,
  type CopyAllRecord,
  type CopyAllSummary,
  type CopyOptions,
  copyAll,
  copyPaths,
} from './copy.js';
export type { GraphResult, GraphSteps, InspectedPath } from './graph.js';
export { type BucketAdministration, type InitOptions, initCache } from './init.js';
export { type PathMetadata, type PushEvent, type PushOptions, type PushResult, pushPaths } from './push.js';
export { ResumeLog, type ResumeOpenOptions, type ResumeRecord } from './resume.js';
export { inShard, parseShard, type Shard } from './shard.js';
export {
  addSignatures,
  type SignEvent,
  type SignOptions,
  type SignRecord,
  type SignResult,
  type SignStatus,
} from './sign.js';
export { type StagedNar, type StageOptions, stageNar } from './stage.js';
export {
  addToVerifySummary,
  emptyVerifySummary,
  type PathReport,
  type PathStatus,
  type VerifyOptions,
  type VerifyResult,
  type VerifySummary,
  verifyCache,
} from './verify.js';
