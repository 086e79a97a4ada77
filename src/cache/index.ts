/**
 * `nixcache/cache`: the cache workflow over any store — init, push, verify, copy, sign — and what
 * the local Nix database knows about store paths (read without `nix`).
 */
export { LocalNixDb, type LocalPathInfo, readLocalPathInfo } from '../local/nix-db.js';
export { type ClosureCheckOptions, type ClosureHole, checkClosures } from './closure-check.js';
export {
  type CopyAllOptions,
  type CopyAllRecord,
  type CopyAllSummary,
  type CopyOptions,
  copyAll,
  copyPaths,
} from './copy.js';
export {
  collectGarbage,
  DEFAULT_GRACE_MS,
  type GcEvent,
  type GcKind,
  type GcObject,
  type GcOptions,
  type GcResult,
  type KindTotals,
} from './gc.js';
export type { GraphResult, GraphSteps, InspectedPath } from './graph.js';
export { type BucketAdministration, type InitOptions, initCache } from './init.js';
export { type LintOptions, type LintReport, type LintSummary, lintCache } from './lint.js';
export { LINT_RULES, type LintFinding, type LintRule, lintNarInfoText } from './lint-rules.js';
export { DEFAULT_NIX_DB, hasLocalNixDb, localNixMetadata } from './local-metadata.js';
export {
  addPinRevision,
  checkPinName,
  DEFAULT_KEEP_REVISIONS,
  formatPin,
  getPin,
  listPins,
  PINS_PREFIX,
  type Pin,
  type PinOptions,
  type PinRevision,
  parsePin,
  pinKey,
  removePin,
} from './pins.js';
export { type PathMetadata, type PushEvent, type PushOptions, type PushResult, pushPaths } from './push.js';
export {
  type RemoveSignaturesOptions,
  type RemoveSignaturesResult,
  removeSignatures,
  withoutSignatures,
} from './remove-signatures.js';
export {
  type RepairAction,
  type RepairOptions,
  type RepairProblem,
  type RepairReport,
  type RepairResult,
  repairCache,
} from './repair.js';
export { ResumeLog, type ResumeOpenOptions, type ResumeRecord } from './resume.js';
export { type NarInfoEdit, type RewriteOptions, type RewriteOutcome, rewriteNarInfo } from './rewrite.js';
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
export { type UpstreamHit, type UpstreamOptions, Upstreams } from './upstream.js';
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
