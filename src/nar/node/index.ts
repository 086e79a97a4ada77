/**
 * `nixcache/nar/node`: NARs and the local filesystem (nix-formats.md §6.2, §11) — dumping and
 * hashing a tree as Nix does, and restoring a NAR safely. Node only.
 */
export { type DumpPathOptions, dumpPath } from './dump.js';
export { type HashPathOptions, type HashPathResult, hashPath } from './hash-path.js';
export { type RestorePathOptions, restorePath } from './restore.js';
