export { narInfoFingerprint, storeDirOf } from './fingerprint.js';
export { formatNarInfo, renderNarInfo, sortSignatures } from './format.js';
export { type ParseNarInfoOptions, parseNarInfo } from './parse.js';
export { COMPRESSION_METHODS, type CompressionMethod, type NarInfo, type NarInfoOriginal } from './types.js';
