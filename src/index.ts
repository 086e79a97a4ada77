/**
 * nixcache: the pure, runtime-neutral format layer (no node:*, no I/O).
 */
export * from './errors.js';
export * from './hash/index.js';
export * from './narinfo/index.js';
export * from './nix32.js';
export * from './signing/index.js';
export * from './store-path/index.js';
