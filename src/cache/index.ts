/**
 * `nixcache/cache`: the cache workflow over any store — init, push, verify, copy, sign.
 */
export { type CopyOptions, copyPaths } from './copy.js';
export type { GraphResult, GraphSteps, InspectedPath } from './graph.js';
export { type BucketAdministration, type InitOptions, initCache } from './init.js';
export { type LintOptions, type LintReport, type LintSummary, lintCache } from './lint.js';
export { LINT_RULES, type LintFinding, type LintRule, lintNarInfoText } from './lint-rules.js';
export { type PathMetadata, type PushEvent, type PushOptions, type PushResult, pushPaths } from './push.js';
export {
  type RemoveSignaturesOptions,
  type RemoveSignaturesResult,
  removeSignatures,
  withoutSignatures,
} from './remove-signatures.js';
export { type NarInfoEdit, type RewriteOptions, type RewriteOutcome, rewriteNarInfo } from './rewrite.js';
export { addSignatures, type SignOptions, type SignResult } from './sign.js';
export { type StagedNar, type StageOptions, stageNar } from './stage.js';
export {
  type PathReport,
  type PathStatus,
  type VerifyOptions,
  type VerifyResult,
  type VerifySummary,
  verifyCache,
} from './verify.js';
